// The REST client: api() makes every request to /api/v1, as any client of
// the public API could, and apiFile() the few whose answer is a file (a
// room's export). They send the session's token (state.js keeps it),
// unwrap the server's envelope and throw an Error in the server's words
// for the caller to show where it belongs. A 401 that means the session is
// over signs the page out, and a 403 "Password change required" asks for
// a new password (session.js); what any other answer means is the
// caller's business. The live side of the chat is socket.js's.

import {state} from './state.js';
import {logout, askForNewPassword} from './session.js';

export async function api(method, path, body) {
  const token = state.token;
  const response = await request(method, path, token, body);
  return unwrapped(response, token, await response.json());
}

// A file the server sends: its bytes as a Blob, and the name its
// Content-Disposition gives it ('' if none). A refusal is the usual envelope.
export async function apiFile(path) {
  const token = state.token;
  const response = await request('GET', path, token);
  if (!response.ok) unwrapped(response, token, await response.json());
  return {blob: await response.blob(), filename: filenameOf(response.headers.get('Content-Disposition'))};
}

function request(method, path, token, body) {
  const headers = {'Content-Type': 'application/json'};
  if (token) headers.Authorization = 'Bearer ' + token;
  return fetch('/api/v1' + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
}

function unwrapped(response, token, reply) {
  // "Invalid credentials" is about a password just typed (at login, or the
  // current one when changing it); any other 401 means the session is over,
  // unless the page has moved to a new session while this request was out.
  const ours = token && token === state.token;
  if (response.status === 401 && ours && reply.message !== 'Invalid credentials') {
    logout('Your session has expired. Please log in again.');
  }
  if (response.status === 403 && ours && reply.error === 'Password change required') askForNewPassword();
  if (!reply.success) throw new Error(reply.error || reply.message);
  return reply.data;
}

// attachment; filename="Lab 4-2025-01-31.csv", or RFC 6266's filename*=UTF-8''... for other letters.
function filenameOf(disposition) {
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition || '');
  if (encoded) return decodeURIComponent(encoded[1]);
  const plain = /filename="((?:[^"\\]|\\.)*)"/i.exec(disposition || '');
  return plain ? plain[1].replace(/\\(.)/g, '$1') : '';
}
