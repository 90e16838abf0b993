// Whether we may post in the room here, and when: a room where only its
// moderators post (`posting: "moderators"`), a mute (our own member's
// `muted_until`), and slow mode (after a post of ours, the next waits the
// room's `slow_mode` seconds; its moderators, owner and admins are exempt,
// as on the server). Where we may not post at all, a note takes the
// composer's place; while slow mode makes us wait, the note says until when
// and "Send" waits too. The server refuses what it must all the same, and
// its refusals of a message come back here (onPostRefused), which gives
// the message's text back to the composer (composer.js). "Send" also waits
// for files still uploading (uploads.js).

import {state, currentRoom, moderating, mutedUntil} from './state.js';
import {$, showError} from './dom.js';
import {shortTime} from './format.js';
import {refreshMembers} from './members.js';
import {refreshRooms} from './rooms.js';
import {takeBackRefused} from './composer.js';
import {uploading} from './uploads.js';

// Why we may not post here at all, or ''.
function whyNotPosting() {
  const room = currentRoom();
  if (!room || room.id !== state.joinedRoomId) return '';
  if (room.posting === 'moderators' && !moderating()) return 'Only moderators post in this room.';
  const us = state.members.find((member) => member.id === state.user.id);
  const until = us && mutedUntil(us);
  return until ? `You are muted in this room until ${shortTime(until)}.` : '';
}

// How long (ms) slow mode still makes us wait here; 0 if it does not.
function slowModeWait() {
  return Math.max(0, (state.nextPostAt[state.joinedRoomId] || 0) - Date.now());
}

export function mayPostNow() {
  return !whyNotPosting() && slowModeWait() === 0;
}

// Called whenever what decides it may have changed (the room, our role or
// mute, the connection), and when a wait ends.
export function renderPosting() {
  const why = whyNotPosting();
  const wait = why ? 0 : slowModeWait();
  const at = new Date(Date.now() + wait);
  const note = why || (wait ? `Slow mode is on: you can send your next message at ${shortTime(at, true)}.` : '');
  $('send-form').hidden = Boolean(why);
  if ($('composer-note').textContent !== note) $('composer-note').textContent = note;  // said once
  $('composer-note').hidden = !note;
  $('send-button').disabled = $('message-input').disabled || wait > 0 || uploading();
  clearTimeout(state.postingTimer);
  if (wait) state.postingTimer = setTimeout(renderPosting, wait + 50);
}

// Our message in a slow-mode room was saved: the next one waits.
export function startSlowMode(roomId, seconds) {
  const room = state.rooms.find((r) => r.id === roomId);
  const wait = seconds ?? room?.slow_mode;
  if (!wait || (roomId === state.joinedRoomId && moderating())) return;
  state.nextPostAt[roomId] = Date.now() + wait * 1000;
  if (roomId === state.joinedRoomId) renderPosting();
}

// The server's refusals of a message we sent on the socket ("Request
// failed" or a 403, with one of these errors); true if it was one. A frame
// names no message, but the socket answers in order, so it is the oldest
// one still unconfirmed.
export function onPostRefused(frame) {
  const refusal = POST_REFUSALS[frame.error];
  if (!refusal) return false;
  takeBackRefused(frame.error !== 'Invalid attachment');
  refusal(frame);
  return true;
}

const POST_REFUSALS = {
  // Sent before we knew of the wait (another tab of ours posted, say); the
  // frame may say how long, else the whole wait is assumed.
  'Slow mode is on': (frame) => startSlowMode(state.joinedRoomId, frame.data?.retry_after),
  // Muted, or the room changed while we wrote: the member list or the room
  // says until when, or why, and the note follows.
  'You are muted in this room': (frame) => {
    showError(frame.error);
    refreshMembers();
  },
  'Only moderators can post in this room': (frame) => {
    showError(frame.error);
    refreshRooms();
  },
  // A file no longer ours to attach (a day old, say): the text comes back without the files.
  'Invalid attachment': () => showError('A file of that message could not be attached (Invalid attachment): attach it again.'),
};
