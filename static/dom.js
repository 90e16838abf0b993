// Building the page from text. `$` finds an element of index.html; element,
// isolated and controlButton make new ones from text nodes and textContent,
// never from strings of HTML, and whatever a user wrote goes in a bidi
// isolate (a <bdi>, or `unicode-bidi: isolate` in chat.css), so that
// control characters such as U+202E cannot reorder the words around it.
// Also the few things every part of the screen may touch: the error banner,
// the connection status, which pane a phone shows, and handing the browser
// a file the page has made or fetched (downloadFile). What goes inside
// the elements is each part's own business (format.js for a message's words).

export const $ = (id) => document.getElementById(id);

// An element with these children (strings become text nodes, never HTML).
export function element(tag, ...children) {
  const made = document.createElement(tag);
  made.append(...children);
  return made;
}

// Text a user wrote, as an element of its own bidi isolate.
export function isolated(text, className) {
  const bdi = document.createElement('bdi');
  if (className) bdi.className = className;
  bdi.textContent = text;
  return bdi;
}

// The same for plain strings such as tooltips: FIRST STRONG ISOLATE ... POP
// DIRECTIONAL ISOLATE.
export function isolatedString(text) {
  return `\u2068${text}\u2069`;
}

// A button that one listener on its list acts on, by data-control.
export function controlButton(text, control, className) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = text;
  button.dataset.control = control;
  if (className) button.className = className;
  return button;
}

export function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

export function setStatus(text) {
  $('status').textContent = text;
}

export function showPane(pane) {
  $('chat-view').dataset.pane = pane;  // only a phone-sized screen shows one pane at a time
}

// A Blob saved as a file with this name, as a download link would. The
// page's Content-Security-Policy governs what it fetches and runs, not
// where a link leads, so a blob: URL of its own is fine.
export function downloadFile(blob, filename) {
  const link = element('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);  // the browser has read it by then
}
