// The conversation: the room's messages and notices on screen, a day's
// separator before its first message, an author's run of messages (each
// within 5 minutes of the one before) under one name and time; its
// history, loaded a page at a time as the reader scrolls back; the live
// frames about its messages (new, edited, deleted, reactions, pins), held
// while history loads; and opening a room at one message (a search result,
// a notification, a reply's quote, a pin). What a message carries besides
// its text is drawn by its own module: its files by attachments.js, the
// quote of what it answers by replies.js, its reactions by reactions.js,
// its action bar by message_actions.js, its editor by editing.js; names
// come from names.js. This list's one click listener only hands each
// button to its module (MESSAGE_CONTROLS).

import {state} from './state.js';
import {$, controlButton, element, isolated, isolatedString, showError, showPane} from './dom.js';
import {api} from './api.js';
import {formatted} from './format.js';
import {attachmentsElement} from './attachments.js';
import {joinRoom} from './room.js';
import {editorFor, startEditing, stopEditing, askToDelete, cancelDelete, deleteMessage} from './editing.js';
import {actionsFor} from './message_actions.js';
import {hiddenAsBlocked, showBlockedMessage} from './blocking.js';
import {askToReport} from './reports.js';
import {typingAfterMessage, startReply, cancelReply} from './composer.js';
import {readSoon, countUnseen} from './reading.js';
import {authorElement, learnUser, learnMembersOf, spokenName} from './names.js';
import {quoteElement, showParent, followEdit, parentGone} from './replies.js';
import {reactionsElement, pickerElement, togglePicker, pickReaction, toggleReaction, applyReactions}
  from './reactions.js';
import {pinnedMark, togglePin, applyPin, showPinsButton} from './pins.js';

const GROUP_SECONDS = 5 * 60;       // a message this soon after its author's last one shares its name
const PAGE = 50;                    // messages per history page

function dayLabel(timestamp) {
  const day = new Date(timestamp * 1000).toDateString();
  const today = new Date();
  if (day === today.toDateString()) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (day === yesterday.toDateString()) return 'Yesterday';
  return new Date(timestamp * 1000).toLocaleDateString(undefined, {weekday: 'long', year: 'numeric', month: 'long', day: 'numeric'});
}

// The elements for one item, given the message shown just before it (for
// the day separator and for grouping an author's consecutive messages).
function elementsFor(item, previous) {
  if (item.kind === 'notice') return [noticeElement(item)];
  const elements = [];
  const newDay = !previous || dayLabel(previous.timestamp) !== dayLabel(item.timestamp);
  if (newDay) {
    const separator = document.createElement('li');
    separator.className = 'day';
    separator.textContent = dayLabel(item.timestamp);
    elements.push(separator);
  }
  elements.push(messageElement(item, continues(item, previous)));
  return elements;
}

// A message soon after its author's last one, on the same day, goes without their name.
function continues(item, previous) {
  return Boolean(previous) && dayLabel(previous.timestamp) === dayLabel(item.timestamp)
    && previous.user_id === item.user_id && item.timestamp - previous.timestamp < GROUP_SECONDS;
}

// A notice's parts are the page's own words, or {user: text} for what a
// user wrote (a name), which goes in an isolate of its own.
function noticeElement(item) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.append(...item.parts.map((part) => (typeof part === 'string' ? part : isolated(part.user))));
  return li;
}

// One message: who and when (unless it continues its author's run), the
// message it answers, its text or, while it is being edited here, the
// editor, its files, its reactions, and its actions. Whether or not its
// run's header shows the name, the message itself is named by its author
// (a screen reader says who wrote each one), and described by its text.
function messageElement(item, continued) {
  const li = document.createElement('li');
  li.className = 'message' + (item.user_id === state.user.id ? ' mine' : '') + (continued ? ' continued' : '')
    + (item.pinned ? ' pinned' : '');
  li.dataset.id = item.id ?? '';
  li.tabIndex = -1;  // a tap or click focuses the message, and that shows its actions (messages.css)
  if (hiddenAsBlocked(item)) {
    li.classList.add('blocked');
    li.append(controlButton('Blocked message - show', 'show-blocked'));
    return li;
  }
  const when = new Date(item.timestamp * 1000);
  const author = spokenName(item.user_id, item.username);
  li.title = `${isolatedString(author)}, ${when.toLocaleString()}`;
  li.setAttribute('aria-label', `${author}, ${shortTimeOf(when)}`);
  if (!continued) li.append(metaFor(item, when));
  if (item.reply_to) li.append(quoteElement(item.reply_to));
  if (state.editing && state.editing.id === item.id) {
    li.append(editorFor());
    return li;
  }
  const body = bodyOf(item);
  li.append(...body);
  if (body[0]?.id) li.setAttribute('aria-describedby', body[0].id);
  if (continued && item.edited_at) li.append(editedMark(item));  // no time to stand beside
  if (item.pinned) li.append(pinnedMark());
  if (item.reactions?.length) li.append(reactionsElement(item));
  const actions = actionsFor(item);
  if (actions) li.append(actions);
  if (state.picking === item.id) li.append(pickerElement());
  return li;
}

// A message's words and files; a message may be files alone. The words
// describe the message (aria-describedby) for a screen reader that lands on it.
function bodyOf(item) {
  const body = [];
  if (item.content || !item.attachments?.length) {
    const content = element('p', ...formatted(item.content, state.user.username));
    content.className = 'content';
    content.dir = 'auto';  // a message in Arabic or Hebrew reads right to left
    if (item.id != null) content.id = `message-text-${item.id}`;
    body.push(content);
  }
  if (item.attachments?.length) body.push(attachmentsElement(item.attachments));
  return body;
}

function shortTimeOf(when) {
  return when.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
}

function metaFor(item, when) {
  const time = element('time', shortTimeOf(when));
  time.dateTime = when.toISOString();
  const meta = element('span', authorElement(item.user_id, item.username), ' · ', time);
  meta.className = 'meta';
  if (item.edited_at) meta.append(' ', editedMark(item));
  return meta;
}

function editedMark(item) {
  const mark = document.createElement('span');
  mark.className = 'edited';
  mark.textContent = '(edited)';
  mark.title = `Edited ${new Date(item.edited_at * 1000).toLocaleString()}`;
  return mark;
}

function lastMessage(items) {
  for (let i = items.length - 1; i >= 0; i--) if (items[i].kind === 'message') return items[i];
  return null;
}

export function renderConversation() {
  const focused = focusInConversation();
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  const elements = [];
  if (state.reachedStart && state.joinedRoomId && state.items.length > 0) {
    const start = document.createElement('li');
    start.className = 'notice';
    start.textContent = 'This is the beginning of the room.';
    elements.push(start);
  }
  let previous = null;
  for (const item of state.items) {
    elements.push(...elementsFor(item, previous));
    if (item.kind === 'message') previous = item;
  }
  list.replaceChildren(...elements);
  list.scrollTop = list.scrollHeight - fromBottom;  // older pages above do not move the view
  showConversationEmpty();
  showPinsButton();
  restoreFocus(focused);
}

// Rendering replaces the list's elements; a keyboard user inside it (on a
// message's button, a reaction, or typing in its editor) must not be thrown out.
function focusInConversation() {
  const active = document.activeElement;
  const li = active && active.closest('#messages li[data-id]');
  if (!li) return null;
  return {id: li.dataset.id, control: active.dataset.control, emoji: active.dataset.emoji,
          selection: active.dataset.control === 'editor' ? [active.selectionStart, active.selectionEnd] : null};
}

function restoreFocus(focused) {
  if (!focused) return;
  const li = $('messages').querySelector(`li[data-id="${focused.id}"]`);
  const emoji = focused.emoji ? `[data-emoji="${CSS.escape(focused.emoji)}"]` : '';
  const target = li ? (li.querySelector(`[data-control="${focused.control}"]${emoji}`) || li) : $('message-input');
  target.focus({preventScroll: true});
  if (focused.selection && target.dataset.control === 'editor') target.setSelectionRange(...focused.selection);
}

function showConversationEmpty() {
  const empty = $('conversation-empty');
  empty.textContent = state.joinedRoomId
    ? 'No messages yet. Say hello!' : 'Pick a room on the left, or create one, to start chatting.';
  empty.hidden = state.items.length > 0 || (state.joinedRoomId && !state.reachedStart);
}

function nearBottom() {
  const list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
  $('new-messages').hidden = true;
}

// Append at the bottom; a reader scrolled up is not moved, but told.
function appendItem(item, mine) {
  const follow = mine || nearBottom();
  const elements = elementsFor(item, lastMessage(state.items));
  state.items.push(item);
  $('messages').append(...elements);
  showConversationEmpty();
  if (follow) scrollToBottom();
  else $('new-messages').hidden = false;
}

// A notice: see noticeElement for its parts.
export function addNotice(...parts) {
  appendItem({kind: 'notice', parts}, false);
}

function rememberLastId(id) {
  if (!state.joinedRoomId || id == null) return;
  if ((state.lastIdByRoom[state.joinedRoomId] || 0) >= id) return;
  state.lastIdByRoom[state.joinedRoomId] = id;
  sessionStorage.setItem('swiftchat.lastIds', JSON.stringify(state.lastIdByRoom));
}

// One message from history or from the socket; shown once, by its id.
function addMessage(message) {
  if (message.id != null) {
    if (state.seenIds.has(message.id)) return;
    state.seenIds.add(message.id);
    rememberLastId(message.id);
  }
  typingAfterMessage(message.user_id);
  appendItem({kind: 'message', ...message}, message.user_id === state.user.id);
  if (document.visibilityState === 'visible') readSoon();
  else countUnseen(message);
}

// A message of GET /messages as the conversation keeps it; its sender's
// name is learnt on the way (names.js).
export function fromHistory(message) {
  learnUser(message.sender);
  return {id: message.id, user_id: message.user_id, username: message.sender.username,
          content: message.content, timestamp: message.timestamp, edited_at: message.edited_at,
          attachments: message.attachments || [], reply_to: message.reply_to || null,
          reactions: message.reactions || [], pinned: Boolean(message.pinned)};
}

export async function loadHistory(roomId) {
  state.items = [];
  state.seenIds = new Set();
  state.reachedStart = false;
  state.editing = state.confirmingDelete = state.picking = null;
  state.pendingLive = [];  // live frames wait until history is on screen, then follow it
  const target = state.jumpTo && state.jumpTo.roomId === roomId ? state.jumpTo.messageId : null;
  state.jumpTo = null;
  let page = [];
  try {
    const members = learnMembersOf(roomId);  // live messages wait for it too, with the history
    [page, state.reachedStart] = target === null ? await newestPage(roomId) : await historyBackTo(roomId, target);
    await members;
  } catch (error) {
    showError(error.message);
  }
  if (roomId !== state.joinedRoomId) return;
  for (const message of page) {
    state.seenIds.add(message.id);
    rememberLastId(message.id);
    state.items.push({kind: 'message', ...fromHistory(message)});
  }
  renderConversation();
  scrollToBottom();
  if (state.replyingTo != null && !findMessage(state.replyingTo)) cancelReply();  // another room's
  const pending = state.pendingLive;
  state.pendingLive = null;
  pending.forEach(applyMessageFrame);
  if (target !== null) showMessage(target);
  fillTheView();
  readSoon();
}

// The newest page of a room's history, and whether it is all of it.
async function newestPage(roomId) {
  const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=${PAGE}`)).messages;
  return [page, page.length < PAGE];
}

// A search result's room, from its newest message back to the result and a
// page before it. GET /messages pages only backwards, and what is on screen
// must run unbroken to the newest message (live ones join it there), so an
// old result costs a request per 100 messages since.
async function historyBackTo(roomId, targetId) {
  let messages = [];
  for (;;) {
    const before = messages.length ? `&before=${messages[0].id}` : '';
    const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=100${before}`)).messages;
    messages = [...page, ...messages];
    if (page.length < 100) return [messages, true];
    if (messages.filter((message) => message.id < targetId).length >= PAGE - 1) return [messages, false];
  }
}

// A message on screen (a search result, a reply's parent, a pin): in the
// middle of the view, marked for a moment (chat.css's .found), and focused,
// so that a screen reader reads it next.
export function showMessage(id) {
  const li = $('messages').querySelector(`li[data-id="${id}"]`);
  if (!li) return showError('That message has been deleted.');
  li.scrollIntoView({block: 'center'});
  li.classList.add('found');
  li.addEventListener('animationend', () => li.classList.remove('found'), {once: true});
  li.focus({preventScroll: true});
}

// Open a room at one of its messages (a search result or a notification).
// A public room we are not in yet is joined, as choosing it in the list would.
export function openAt(roomId, messageId) {
  showPane('conversation');
  if (roomId === state.joinedRoomId && findMessage(messageId)) return showMessage(messageId);
  state.jumpTo = {roomId, messageId};
  if (roomId === state.joinedRoomId) loadHistory(roomId);
  else joinRoom(roomId);
}

// Scrolling to the top fetches the page before the oldest message shown.
async function loadOlder() {
  if (state.loadingOlder || state.reachedStart || !state.joinedRoomId) return;
  const oldest = state.items.find((item) => item.kind === 'message');
  if (!oldest) return;
  const roomId = state.joinedRoomId;
  state.loadingOlder = true;
  try {
    const page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=${PAGE}&before=${oldest.id}`)).messages;
    if (roomId !== state.joinedRoomId) return;
    state.reachedStart = page.length < PAGE;
    const older = page.filter((m) => !state.seenIds.has(m.id)).map((m) => ({kind: 'message', ...fromHistory(m)}));
    older.forEach((m) => state.seenIds.add(m.id));
    state.items = [...older, ...state.items];
    renderConversation();
  } catch (error) {
    // Said once; the next scroll to the top tries again. Not fillTheView
    // here: with the server out of reach that would ask again at once, and
    // again, as fast as the network says no.
    showError(error.message);
    return;
  } finally {
    state.loadingOlder = false;
  }
  fillTheView();
}

// A tall window may show a whole page with room to spare: keep loading.
function fillTheView() {
  const list = $('messages');
  if (list.scrollHeight <= list.clientHeight && !state.reachedStart) loadOlder();
}

export function findMessage(id) {
  return state.items.find((item) => item.kind === 'message' && item.id === id);
}

// One message drawn again where it is (edited, or opening its editor or
// question): the list is aria-live, and rebuilding all of it would have
// a screen reader read the whole conversation again.
export function redrawMessage(id) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === id);
  const old = $('messages').querySelector(`li[data-id="${id}"]`);
  if (index < 0 || !old) return;
  const focused = focusInConversation();
  old.replaceWith(elementsFor(state.items[index], lastMessage(state.items.slice(0, index))).pop());
  restoreFocus(focused);
}

// Someone's name changed (names.js): their messages, and those that quote
// them or carry their reactions, are drawn again.
export function redrawMessagesOf(userId) {
  const touched = (item) => item.user_id === userId || item.reply_to?.user_id === userId
    || item.reactions?.some((reaction) => reaction.user_ids.includes(userId));
  for (const item of state.items) if (item.kind === 'message' && touched(item)) redrawMessage(item.id);
}

// message_updated, or the answer to our own edit: the new text, "(edited)".
export function applyUpdate(data) {
  const item = findMessage(data.id);
  if (!item) return;
  item.content = data.content;
  item.edited_at = data.edited_at;
  redrawMessage(data.id);
  followEdit(data);
}

// message_deleted, or the answer to our own delete. Its id stays seen, so
// that nothing brings it back.
export function removeMessage(data) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === data.id);
  if (index < 0) return;
  const [gone] = state.items.splice(index, 1);
  if (state.editing && state.editing.id === gone.id) state.editing = null;
  if (state.confirmingDelete === gone.id) state.confirmingDelete = null;
  if (state.picking === gone.id) state.picking = null;
  const li = $('messages').querySelector(`li[data-id="${gone.id}"]`);
  const hadFocus = li && li.contains(document.activeElement);
  if (li) dropMessageElement(li, state.items.slice(index).find((item) => item.kind === 'message'));
  showConversationEmpty();
  if (hadFocus && !$('message-input').disabled) $('message-input').focus();
  parentGone(gone.id);
}

// Takes a message's element out, with the day's separator if no message of
// that day follows; the next message may now start its author's run.
function dropMessageElement(li, next) {
  const separator = li.previousElementSibling;
  li.remove();
  if (separator && separator.classList.contains('day')
      && !(next && dayLabel(next.timestamp) === separator.textContent)) separator.remove();
  if (!next) return;
  const nextLi = $('messages').querySelector(`li[data-id="${next.id}"]`);
  const previous = lastMessage(state.items.slice(0, state.items.indexOf(next)));
  if (nextLi && nextLi.classList.contains('continued') !== continues(next, previous)) redrawMessage(next.id);
}

// message_received, message_sent, message_updated, message_deleted,
// reactions, message_pinned or message_unpinned: for the room on screen
// only, and after its history if that is still loading.
export function onMessageFrame(data) {
  if (data.room_id !== state.joinedRoomId) return;
  if (state.pendingLive) state.pendingLive.push(data);
  else applyMessageFrame(data);
}

// A live frame about the room's messages, in the order the server sent it.
function applyMessageFrame(data) {
  const apply = Object.hasOwn(CHANGES, data.type) ? CHANGES[data.type] : addMessage;
  apply(data);
}

// The frames that change a message on screen, by type; any other is a new message.
const CHANGES = {
  message_updated: applyUpdate,
  message_deleted: removeMessage,
  reactions: applyReactions,
  message_pinned: applyPin,
  message_unpinned: applyPin,
};

// What each button in a message does, by its data-control (one listener on
// the list): action(message id, the button).
const MESSAGE_CONTROLS = {
  'show-blocked': showBlockedMessage,
  quote: showParent,
  reply: startReply,
  react: togglePicker,
  pick: pickReaction,
  reaction: toggleReaction,
  pin: togglePin,
  edit: startEditing,
  'cancel-edit': stopEditing,
  delete: askToDelete,
  'confirm-delete': deleteMessage,
  'cancel-delete': cancelDelete,
  report: askToReport,
};

// -- wiring -----------------------------------------------------------------

$('messages').addEventListener('scroll', () => {
  if (nearBottom()) $('new-messages').hidden = true;
  if ($('messages').scrollTop < 60) loadOlder();
});
$('new-messages').addEventListener('click', scrollToBottom);

// The controls inside messages (see editing.js) come and go; one listener for them all.
$('messages').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MESSAGE_CONTROLS[button.dataset.control];
  if (action) action(Number(button.closest('li').dataset.id), button);
});
