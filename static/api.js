// The REST client: api() makes every request to /api/v1, as any client of
// the public API could. It sends the session's token (state.js keeps it),
// unwraps the server's envelope and throws an Error in the server's words
// for the caller to show where it belongs. A 401 that means the session is
// over signs the page out (session.js); what any answer means is the
// caller's business. The live side of the chat is socket.js's.

import {state} from './state.js';
import {logout} from './session.js';

export async function api(method, path, body) {
  const token = state.token;
  const headers = {'Content-Type': 'application/json'};
  if (token) headers.Authorization = 'Bearer ' + token;
  const response = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await response.json();
  // "Invalid credentials" is about a password just typed (at login, or the
  // current one when changing it); any other 401 means the session is over,
  // unless the page has moved to a new session while this request was out.
  if (response.status === 401 && token && token === state.token && reply.message !== 'Invalid credentials') {
    logout('Your session has expired. Please log in again.');
  }
  if (!reply.success) throw new Error(reply.error || reply.message);
  return reply.data;
}
