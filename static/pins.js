// Pinned messages: "Pin" and "Unpin" on a message (drawn by
// message_actions.js for those state.js's pinning() allows: the room's
// moderators, its owner, admins, and either member of a direct room), the
// mark on a pinned message, and the room header's "Pinned messages"
// button, which lists the room's pins (GET /rooms/{id}/pins, newest pin
// first), each entry opening its message. The button and its dialog are
// made here, since only this module uses them. The message_pinned and
// message_unpinned frames come through messages.js, which holds them while
// history loads.

import {state} from './state.js';
import {$, element, showError} from './dom.js';
import {api} from './api.js';
import {findMessage, redrawMessage, openAt} from './messages.js';
import {authorElement, learnUser, spokenName} from './names.js';
import {excerptOf} from './replies.js';
import {icon} from './message_actions.js';

// -- the header's button and the list it opens ---------------------------------

// On a phone's narrow header, the pin alone shows (messages.css); the words stay its name.
const pinsWords = element('span', 'Pinned messages');
pinsWords.className = 'words';
const pinsButton = element('button', icon('pin'), pinsWords);
pinsButton.title = 'Pinned messages';
pinsButton.type = 'button';
pinsButton.id = 'pins-button';
pinsButton.setAttribute('aria-haspopup', 'dialog');
pinsButton.hidden = true;

const title = element('h2', 'Pinned messages');
title.id = 'pins-title';
const closeButton = element('button', 'Close');
closeButton.type = 'button';
const header = element('div', title, closeButton);
header.className = 'pane-header';
const outcome = element('p');
outcome.setAttribute('role', 'status');
const list = element('ul');
list.setAttribute('aria-label', 'Pinned messages');
const dialog = element('dialog', header, outcome, list);
dialog.id = 'pins-view';
dialog.setAttribute('aria-labelledby', title.id);

// Shown while we are in a room (messages.js calls this whenever the conversation is drawn).
export function showPinsButton() {
  pinsButton.hidden = !state.joinedRoomId;
  if (!state.joinedRoomId && dialog.open) dialog.close();
}

async function openPins() {
  list.replaceChildren();
  outcome.textContent = 'Loading…';
  dialog.showModal();
  await listPins();
}

// Asked again each time and on each pin frame: pins are few (at most 50 a room).
async function listPins() {
  const roomId = state.joinedRoomId;
  let messages;
  try {
    messages = (await api('GET', `/rooms/${encodeURIComponent(roomId)}/pins`)).messages;
  } catch (error) {
    outcome.textContent = error.message;
    return;
  }
  if (roomId !== state.joinedRoomId || !dialog.open) return;
  const focused = document.activeElement?.closest('#pins-view li')?.dataset.id;
  list.replaceChildren(...messages.map(pinEntry));
  outcome.textContent = messages.length ? '' : 'No pinned messages in this room.';
  if (focused) list.querySelector(`li[data-id="${focused}"] button`)?.focus();
}

// One pin: who wrote it, when, and how it starts; choosing it shows the message.
function pinEntry(message) {
  learnUser(message.sender);
  const when = new Date(message.timestamp * 1000);
  const time = element('time', when.toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'}));
  time.dateTime = when.toISOString();
  const meta = element('span', authorElement(message.user_id, message.sender.username), ' · ', time);
  meta.className = 'meta';
  const words = message.content ? excerptOf(message.content) : 'Files';
  const excerpt = element('span', words);
  excerpt.className = 'excerpt';
  excerpt.dir = 'auto';
  const button = element('button', meta, excerpt);
  button.type = 'button';
  button.setAttribute('aria-label', `${spokenName(message.user_id, message.sender.username)}: ${words}`);
  button.addEventListener('click', () => {
    dialog.close();
    openAt(message.room_id || state.joinedRoomId, message.id);
  });
  const li = element('li', button);
  li.dataset.id = message.id;
  return li;
}

// -- on a message ----------------------------------------------------------------

// Under a pinned message's words (in an author's run, its header may not be shown).
export function pinnedMark() {
  const mark = element('span', 'Pinned');
  mark.className = 'pinned-mark';
  return mark;
}

// "Pin" or "Unpin". The answer is enough to redraw it here; the room hears the frame.
export async function togglePin(id) {
  const item = findMessage(id);
  if (!item) return;
  const pinning = !item.pinned;
  try {
    await api(pinning ? 'POST' : 'DELETE', `/messages/${id}/pin`);
  } catch (error) {
    showError(error.message);
    return;
  }
  applyPin({type: pinning ? 'message_pinned' : 'message_unpinned', id});
}

// message_pinned or message_unpinned, or our own pin's answer.
export function applyPin(data) {
  const item = findMessage(data.id);
  const pinned = data.type === 'message_pinned';
  if (item && item.pinned !== pinned) {
    item.pinned = pinned;
    redrawMessage(data.id);
  }
  if (dialog.open) listPins();
}

// -- wiring -----------------------------------------------------------------

$('room-heading').after(pinsButton);
document.body.append(dialog);
pinsButton.addEventListener('click', openPins);
closeButton.addEventListener('click', () => dialog.close());  // the browser gives the focus back to the button
