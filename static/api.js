// The REST client: api() makes every request to /api/v1, as any client of
// the public API could, apiFile() the few whose answer is a file (a
// room's export), and apiUpload() the one whose body is a file (POST
// /uploads, telling its progress as it goes). They send the session's
// token (state.js keeps it), unwrap the server's envelope and throw an
// Error in the server's words for the caller to show where it belongs. A 401 that means the session is
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

// A file sent as the body of POST /uploads; the answer's data is the upload
// ({id, filename, content_type, size, url, width, height}). fetch() cannot
// tell how much of a body has gone, so this is an XMLHttpRequest:
// onProgress(bytes sent) as they go. Aborting the signal stops it, and the
// promise rejects with an AbortError; a refusal's Error carries the status.
export function apiUpload(file, onProgress, signal) {
  const token = state.token;
  const xhr = new XMLHttpRequest();
  return new Promise((resolve, reject) => {
    xhr.open('POST', '/api/v1/uploads');
    xhr.responseType = 'json';
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('X-Filename', encodeURIComponent(file.name));
    if (token) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      try {
        resolve(unwrapped(xhr, token, xhr.response || notOurs(xhr.status)));
      } catch (error) {
        error.status = xhr.status;  // a 429 is worth trying again (uploads.js)
        reject(error);
      }
    };
    // The server answers a file over its limit before reading it, then
    // closes the connection: a browser may see only the cut.
    xhr.onerror = () => reject(new Error('The upload was cut off (is the file over the size limit?)'));
    xhr.onabort = () => reject(new DOMException('Upload removed', 'AbortError'));
    signal.addEventListener('abort', () => xhr.abort(), {once: true});
    xhr.send(file);
  });
}

// An answer that is not SwiftChat's JSON, such as a proxy's own "413" page.
function notOurs(status) {
  return {success: false, message: 'Upload failed', error: status === 413 ? 'File too large' : `HTTP ${status}`};
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
