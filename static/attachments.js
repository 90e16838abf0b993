// A message's files on the page. An image (PNG, JPEG, GIF or WebP, whose
// width and height the server read from its bytes) is shown in the message,
// at most 360 pixels wide, inside a link that opens it full size in a new
// tab; any other file is a link with its name and size, which downloads
// it. The links are the server's own `url`s: they work without a token,
// which is what lets an <img> show them. Also a file's size in words, and
// a message's files as plain names where a message is only summed up (a
// search result, a notification, a report). Choosing and uploading files
// is uploads.js's; where a message goes on the page, messages.js's.

import {element, isolated, isolatedString} from './dom.js';

const MAX_WIDTH = 360;  // px: an image wider than this is shown scaled down (README, "Files and images")
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const UNITS = ['KB', 'MB', 'GB'];

// The files of one message, in the order they were attached. A <div>, not
// a list: the conversation is a list, and its items are messages.
export function attachmentsElement(attachments) {
  const files = element('div', ...attachments.map((file) => (isImage(file) ? imageLink(file) : fileLink(file))));
  files.className = 'attachments';
  return files;
}

// The server names a type and a size only for an image it recognised by its bytes.
function isImage(file) {
  return IMAGE_TYPES.has(file.content_type) && file.width > 0 && file.height > 0;
}

// The image at its size, or scaled down to MAX_WIDTH. Its width and height
// are set before it loads, so the space it takes is kept from the start
// and the conversation does not jump when it arrives.
function imageLink(file) {
  const scale = Math.min(1, MAX_WIDTH / file.width);
  const image = element('img');
  image.alt = file.filename;
  image.width = Math.max(1, Math.round(file.width * scale));
  image.height = Math.max(1, Math.round(file.height * scale));
  image.src = file.url;
  const link = element('a', image);
  link.className = 'image';
  link.href = file.url;
  link.target = '_blank';
  link.rel = 'noopener';
  link.setAttribute('aria-label', `Open ${file.filename} full size`);
  link.title = `${isolatedString(file.filename)}, ${fileSize(file.size)}: open full size`;
  return link;
}

// "handout.pdf, 1.2 MB", named so too. The server sends any file but an
// image as a download (Content-Disposition: attachment); `download` says
// the same to the browser.
function fileLink(file) {
  const link = element('a', isolated(file.filename, 'name'), `, ${fileSize(file.size)}`);
  link.className = 'file';
  link.href = file.url;
  link.download = file.filename;
  return link;
}

// 512 bytes, 4.2 KB, 1.2 MB, 35 MB: KB and MB of 1024, as the server's limits are.
export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  for (; value >= 1024 && unit < UNITS.length - 1; unit += 1) value /= 1024;
  const digits = value < 10 ? 1 : 0;
  return `${value.toLocaleString(undefined, {maximumFractionDigits: digits})} ${UNITS[unit]}`;
}

// A message's files as names beside its text, where it is only summed up
// (a search result, the report dialog): nodes, each name in its isolate.
export function attachmentNames(attachments) {
  if (!attachments?.length) return [];
  const names = attachments.flatMap((file, i) => (i === 0 ? [] : [', ']).concat(isolated(file.filename)));
  const line = element('span', '📎 ', ...names);
  line.className = 'attached-names';
  return [line];
}

// The same as one string, for a notification's body.
export function attachmentText(attachments) {
  return (attachments || []).map((file) => `📎 ${isolatedString(file.filename)}`).join(', ');
}
