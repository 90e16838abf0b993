// The composer and the typing line above it: writing a message (Enter
// sends, Shift+Enter is a new line; the box grows with its text), sending
// it with a client_id so that a resend after a reconnect is safe, telling
// the room we are typing, and showing who else is. A message may answer
// another ("Reply" on it): the composer then says which, above the box,
// until it is sent or "Cancel reply" (or Escape) lets it go. A message may
// carry files, or be files alone: choosing and uploading them is
// uploads.js's, and this sends their ids. Whether the composer may be used at all is
// room.js's (in a room, connected) and posting.js's (only moderators post,
// a mute, slow mode); the message, once the server confirms it, is drawn
// by messages.js like anyone's.

import {state} from './state.js';
import {$, element, showError} from './dom.js';
import {send} from './socket.js';
import {onMessageFrame, findMessage} from './messages.js';
import {authorElement} from './names.js';
import {excerptOf} from './replies.js';
import {mayPostNow, renderPosting, startSlowMode} from './posting.js';
import {uploading, takeFiles, giveBackFiles} from './uploads.js';

// The server passes one `typing` per user per 2 s and drops the rest; a little
// more than that here, so that a frame arriving early never gets dropped.
const TYPING_EVERY_MS = 2200;       // we tell the room we are typing at most this often
const TYPING_SHOWN_MS = 4000;       // and show someone else's typing for this long
const TYPING_NEXT_MS = TYPING_EVERY_MS + 1000;  // by then someone still typing has told us again

function newClientId() {
  // crypto.randomUUID exists only on https or localhost; a lab machine's address is neither.
  return (crypto.randomUUID && window.isSecureContext)
    ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// "Send" waits while a file is still uploading (posting.js); Enter does too.
function sendMessage() {
  const content = $('message-input').value;
  if ((!content.trim() && !state.attached.length) || !state.joinedRoomId || uploading()) return;
  if (!mayPostNow()) return renderPosting();  // the text stays; the note says why or until when
  const message = {content, client_id: newClientId(), room_id: state.joinedRoomId, attachments: takeFiles(),
                   reply_to: state.replyingTo};
  state.unsent.push(message);
  send(sendFrame(message));
  $('message-input').value = '';
  fitComposer();
  cancelReply();
}

// The files go as their upload ids, the message answered as its id; a
// message with neither is sent as before 1.3.
function sendFrame({content, client_id, attachments, reply_to}) {
  const frame = {type: 'send_message', content, client_id};
  if (attachments.length) frame.attachments = attachments.map((upload) => upload.id);
  if (reply_to != null) frame.reply_to = reply_to;
  return frame;
}

// message_sent: ours, saved; it need not be sent again.
export function onMessageSent(data) {
  const wasWaiting = state.unsent.some((m) => m.client_id === data.client_id);
  state.unsent = state.unsent.filter((m) => m.client_id !== data.client_id);
  onMessageFrame(data);
  if (wasWaiting && !data.duplicate) startSlowMode(data.room_id);
}

// The server refused the oldest message we sent here and have not seen
// confirmed (posting.js): it is not sent again, and its text comes back to
// an empty composer, its files too unless they were what was refused.
export function takeBackRefused(withFiles = true) {
  const index = state.unsent.findIndex((message) => message.room_id === state.joinedRoomId);
  if (index < 0) return;
  const [refused] = state.unsent.splice(index, 1);
  if (withFiles) giveBackFiles(refused.attachments);
  if ($('message-input').value) return;
  $('message-input').value = refused.content;
  fitComposer();
  if (state.replyingTo == null && refused.reply_to != null && findMessage(refused.reply_to)) {
    startReply(refused.reply_to);
  }
}

// "Invalid reply": the message it answered was deleted while ours was on
// its way. The text comes back, to be sent as a message of its own.
export function onReplyRefused() {
  takeBackRefused();
  cancelReply();
  showError('The message you replied to was deleted: your text is back in the box, to send without it.');
}

// Messages we sent in this room but never saw confirmed (the connection
// dropped): the same client_id makes a resend safe.
export function resendUnsent(roomId) {
  state.unsent = state.unsent.filter((message) => message.room_id === roomId);
  for (const message of state.unsent) send(sendFrame(message));
}

// -- replying -----------------------------------------------------------------

// "Replying to Ana K.: the start of their words" and "Cancel reply", on a
// row of their own above the box, made here since they exist only for this.
const replyText = element('span');
replyText.id = 'replying-text';
const cancelButton = element('button', '×');
cancelButton.type = 'button';
cancelButton.setAttribute('aria-label', 'Cancel reply');
cancelButton.title = 'Cancel reply (Escape)';
const replyBar = element('div', replyText, cancelButton);
replyBar.className = 'replying';
replyBar.hidden = true;

// "Reply" on a message: the next message answers it.
export function startReply(id) {
  if (!findMessage(id)) return;
  state.replyingTo = id;
  renderReply();
  $('message-input').focus();
}

export function cancelReply() {
  if (state.replyingTo == null) return;
  state.replyingTo = null;
  renderReply();
}

// The box is described by what it answers, so a screen reader says so on the way in.
export function renderReply() {
  const item = state.replyingTo != null && findMessage(state.replyingTo);
  replyBar.hidden = !item;
  if (!item) return $('message-input').removeAttribute('aria-describedby');
  const excerpt = element('span', excerptOf(item.content));
  excerpt.className = 'excerpt';
  excerpt.dir = 'auto';
  replyText.replaceChildren('Replying to ', authorElement(item.user_id, item.username), ': ', excerpt);
  $('message-input').setAttribute('aria-describedby', replyText.id);
}

function fitComposer() {
  const input = $('message-input');
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}

// -- typing -------------------------------------------------------------------

export function renderTyping() {
  const now = Date.now();
  for (const [userId, who] of state.typing) if (who.until <= now) state.typing.delete(userId);
  const names = [...state.typing].map(([userId, who]) => authorElement(userId, who.username));
  const line = names.flatMap((name, i) => (i === 0 ? [name] : [', ', name]));
  if (names.length > 0) line.push(names.length === 1 ? ' is typing…' : ' are typing…');
  $('typing').replaceChildren(...line);
}

// user_typing
export function showTyping(data) {
  if (data.room_id !== state.joinedRoomId || data.user_id === state.user.id) return;
  if (state.blocked.has(data.user_id)) return;  // what they write is hidden; so is their typing
  const now = Date.now();
  state.typing.set(data.user_id, {username: data.username, heardAt: now, until: now + TYPING_SHOWN_MS});
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

export function clearTyping(userId) {
  if (state.typing.delete(userId)) renderTyping();
}

// Someone who was typing sent their message. They may type on (a reply, a
// second thought), but the server passes at most one `typing` of theirs
// per 2 s, so it cannot tell us at once: clearing their line here made it
// vanish for up to 2 s exactly while the next message was being typed.
// Instead it stays until their next `typing` would have come, and goes
// then if none did.
export function typingAfterMessage(userId) {
  const who = state.typing.get(userId);
  if (!who) return;
  who.until = Math.min(who.until, who.heardAt + TYPING_NEXT_MS);
  setTimeout(renderTyping, who.until - Date.now() + 50);
}

// Not sooner after sending a message either: the server would drop that
// `typing` and the next one would wait on it (see typingAfterMessage).
function tellTyping() {
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_EVERY_MS || !state.joinedRoomId) return;
  state.lastTypingSent = now;
  send({type: 'typing'}, true);
}

// -- wiring -----------------------------------------------------------------

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendMessage();
});
$('message-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();  // Enter sends; Shift+Enter is a new line
    sendMessage();
  } else if (event.key === 'Escape' && state.replyingTo != null) {
    cancelReply();
  }
});
$('send-form').prepend(replyBar);
cancelButton.addEventListener('click', () => {
  cancelReply();
  $('message-input').focus();
});
$('message-input').addEventListener('input', () => {
  fitComposer();
  if ($('message-input').value.trim()) tellTyping();
});
