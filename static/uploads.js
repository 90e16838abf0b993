// Files for the next message: the composer's "Attach file" button (a file
// picker, several files at once), files dropped anywhere on the
// conversation, and an image pasted into the message box. Each file is
// uploaded at once (api.js's apiUpload, POST /uploads; three at a time, as
// the server takes them) with a progress bar, and waits above the message
// box, with its "Remove" button, until the message goes: composer.js takes
// the uploaded ones (takeFiles) and sends their ids with it, and gives
// them back (giveBackFiles) if the server refuses the message. A refused
// upload (too large, over the quota) is said in the page's error banner
// and leaves the list. How a message's files look is attachments.js's.

import {state} from './state.js';
import {$, element, isolated, isolatedString, showError} from './dom.js';
import {apiUpload} from './api.js';
import {fileSize} from './attachments.js';
import {renderPosting} from './posting.js';

const MAX_FILES = 10;               // files per message (CONTRACT 1.3)
const AT_ONCE = 3;                  // uploads of one user the server receives at once (429 beyond)
const RETRY_MS = 1000;              // after a 429: our other tabs' uploads, or the write budget
const DROP_SHOWN_MS = 150;          // dragover repeats every 50 ms or so while a drag is over us

// Files may be attached while the composer may be used: in a room, connected, allowed to post.
function mayAttach() {
  return !$('message-input').disabled && !$('send-form').hidden;
}

function attachFiles(files) {
  if (!mayAttach()) return showError('Open a room you may write in to attach files.');
  const room = MAX_FILES - state.attached.length;
  if (files.length > room) showError(`A message may carry at most ${MAX_FILES} files.`);
  for (const file of [...files].slice(0, Math.max(0, room))) {
    state.attached.push({file, name: file.name, size: file.size, loaded: 0, started: false, upload: null,
                         controller: new AbortController()});
  }
  renderFiles();
  startUploads();
}

// The files still waiting start, as many as the server takes at once.
function startUploads() {
  const running = state.attached.filter((entry) => entry.started && !entry.upload).length;
  const waiting = state.attached.filter((entry) => !entry.started);
  waiting.slice(0, Math.max(0, AT_ONCE - running)).forEach(upload);
}

// One file on its way; its entry gets the upload's answer once it has come.
async function upload(entry) {
  entry.started = true;
  try {
    entry.upload = await apiUpload(entry.file, (loaded) => showProgress(entry, loaded), entry.controller.signal);
  } catch (error) {
    if (error.name === 'AbortError') return;  // removed while it was uploading (removeFile)
    if (error.status === 429) {  // taken again once the others are through
      Object.assign(entry, {started: false, loaded: 0});
      return setTimeout(startUploads, RETRY_MS);
    }
    state.attached = state.attached.filter((other) => other !== entry);
    showError(`${isolatedString(entry.name)} could not be uploaded: ${error.message}`);
  }
  renderFiles();
  startUploads();
}

// The progress bar alone moves: drawing the list again would take the
// focus from a "Remove" button at every step.
function showProgress(entry, loaded) {
  entry.loaded = loaded;
  const item = $('attached-files').children[state.attached.indexOf(entry)];
  const bar = item && item.querySelector('progress');
  if (bar) bar.value = loaded;
}

// The list above the composer; the focus stays at its place in it.
function renderFiles() {
  const list = $('attached-files');
  const focused = [...list.children].findIndex((item) => item.contains(document.activeElement));
  list.replaceChildren(...state.attached.map(fileItem));
  list.hidden = state.attached.length === 0;
  if (focused >= 0) (list.children[Math.min(focused, list.children.length - 1)]?.querySelector('button')
                     || $('message-input')).focus();
  renderPosting();  // "Send" waits for the uploads
}

// "notes.pdf 1.2 MB", a progress bar while it uploads, and "Remove".
function fileItem(entry) {
  const size = element('span', fileSize(entry.size));
  size.className = 'size';
  const item = element('li', isolated(entry.name, 'name'), size);
  if (!entry.upload) {
    const bar = element('progress');
    bar.max = Math.max(entry.size, 1);
    bar.value = entry.loaded;
    bar.setAttribute('aria-label', `Uploading ${entry.name}`);
    item.append(bar);
  }
  const remove = element('button', '×');
  remove.type = 'button';
  remove.className = 'remove';
  remove.setAttribute('aria-label', `Remove ${entry.name}`);
  remove.title = `Remove ${isolatedString(entry.name)}`;
  item.append(remove);
  return item;
}

// A file taken off the list; one still uploading is stopped. The server
// deletes an upload no message carries after a day.
function removeFile(index) {
  const [entry] = state.attached.splice(index, 1);
  if (entry && !entry.upload) entry.controller.abort();
  renderFiles();
  startUploads();
}

export function uploading() {
  return state.attached.some((entry) => !entry.upload);
}

// The uploads for the message being sent, taken off the list.
export function takeFiles() {
  const uploads = state.attached.map((entry) => entry.upload);
  state.attached = [];
  renderFiles();
  return uploads;
}

// A refused message's files, back above an empty list.
export function giveBackFiles(uploads) {
  if (!uploads.length || state.attached.length) return;
  state.attached = uploads.map((upload) => ({name: upload.filename, size: upload.size, loaded: upload.size,
                                            started: true, upload, controller: null}));
  renderFiles();
}

// Signed out: what was uploading stops, and the list goes.
export function forgetFiles() {
  for (const entry of state.attached) if (!entry.upload) entry.controller.abort();
  state.attached = [];
  renderFiles();
}

// -- dragging files over the page -------------------------------------------

function carriesFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes('Files');
}

// A file dropped elsewhere on the page would have the browser open it in
// place of the chat: the page takes every drop of files, and only the
// conversation's are attached.
function onDragOver(event) {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  const here = $('room-panel').contains(event.target) && mayAttach();
  event.dataTransfer.dropEffect = here ? 'copy' : 'none';
  $('room-panel').classList.toggle('dropping', here);
  clearTimeout(state.dropTimer);  // the drag left, or ended, when dragover stops coming
  state.dropTimer = setTimeout(() => $('room-panel').classList.remove('dropping'), DROP_SHOWN_MS);
}

function onDrop(event) {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  $('room-panel').classList.remove('dropping');
  if ($('room-panel').contains(event.target)) attachFiles(event.dataTransfer.files);
}

// -- wiring -----------------------------------------------------------------

$('attach-button').addEventListener('click', () => $('file-input').click());
$('file-input').addEventListener('change', () => {
  attachFiles($('file-input').files);
  $('file-input').value = '';  // the same file chosen again is a change too
});
$('attached-files').addEventListener('click', (event) => {
  const button = event.target.closest('button.remove');
  if (button) removeFile([...$('attached-files').children].indexOf(button.closest('li')));
});
// A screenshot pasted is a file; text copied with a picture beside it
// (from a web page, a document) is pasted as text, as before.
$('message-input').addEventListener('paste', (event) => {
  const files = event.clipboardData?.files;
  if (!files?.length || event.clipboardData.types.includes('text/plain')) return;
  event.preventDefault();
  attachFiles(files);
});
document.addEventListener('dragover', onDragOver);
document.addEventListener('drop', onDrop);
