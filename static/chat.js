// SwiftChat's browser client. It uses only the public API, like any other
// client: REST for accounts, rooms, members and history, the WebSocket for
// live chat. Everything a user typed is put on the page with textContent,
// never as HTML, and in a bidi isolate (a <bdi>, or `unicode-bidi: isolate`
// in chat.css), so that control characters such as U+202E cannot reorder
// the words around it. Nothing here is inline script or style: the server
// sends a Content-Security-Policy that forbids both.
'use strict';

const $ = (id) => document.getElementById(id);

const GROUP_SECONDS = 5 * 60;       // a message this soon after its author's last one shares its name
const TYPING_EVERY_MS = 2000;       // we tell the room we are typing at most this often
const TYPING_SHOWN_MS = 4000;       // and show someone else's typing for this long
const REFRESH_BEFORE_MS = 5 * 60 * 1000;  // a token is renewed this long before it expires
const PAGE = 50;                    // messages per history page
const SESSION_ENDED = 4001;         // close code: logged out elsewhere, password changed, or too old

const state = {
  token: sessionStorage.getItem('swiftchat.token'),
  user: JSON.parse(sessionStorage.getItem('swiftchat.user') || 'null'),
  roomId: sessionStorage.getItem('swiftchat.room'),  // the room to be in, kept across reloads
  joinedRoomId: null,  // the room this connection is in now
  rejoinRoomId: null,  // the room a dropped connection was in: rejoined with `since`
  rooms: [],
  members: [],
  socket: null,
  authenticated: false, // this socket's first `auth` was answered; later answers are for renewed tokens
  wsUrl: null,         // where the WebSocket is, as GET /info says
  retryDelay: 500,     // ms; doubles after each failed reconnect, up to 10 s
  // The conversation on screen: messages (by id, oldest first) and notices.
  items: [],
  seenIds: new Set(),
  reachedStart: false, // the first message of the room is on screen
  loadingOlder: false,
  pendingLive: null,   // live messages that arrive while history is loading
  lastIdByRoom: JSON.parse(sessionStorage.getItem('swiftchat.lastIds') || '{}'),
  unsent: [],          // {client_id, content} sent but not yet confirmed: resent after a reconnect
  typing: new Map(),   // user_id -> {username, until}
  lastTypingSent: 0,
  refreshTimer: null,
  role: 'user',        // from GET /users/me: 'user' or 'admin'
  moderating: false,   // may delete anyone's message here and remove members (see moderating())
  inDirectRoom: false, // the room here is a direct room: no "Message" or "Remove" beside its two
  editing: null,       // {id, draft, error}: the message being edited on this page
  confirmingDelete: null, // the id of the message whose "Delete" waits for "Confirm delete"
  users: [],           // the Admin view's accounts
  settingPasswordFor: null, // the user id whose "Set password" form is open there
};

// -- REST -------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {'Content-Type': 'application/json'};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const response = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await response.json();
  // "Invalid credentials" is about a password just typed (at login, or the
  // current one when changing it); any other 401 means the session is over.
  if (response.status === 401 && state.token && reply.message !== 'Invalid credentials') {
    logout('Your session has expired. Please log in again.');
  }
  if (!reply.success) throw new Error(reply.error || reply.message);
  return reply.data;
}

// -- small view helpers -----------------------------------------------------

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

function setStatus(text) {
  $('status').textContent = text;
}

function setConnected(connected) {
  const inRoom = connected && Boolean(state.joinedRoomId);
  $('message-input').disabled = !inRoom;
  $('send-button').disabled = !inRoom;
  $('leave-room').disabled = !inRoom;
  $('show-members').disabled = !state.joinedRoomId;
}

function showPane(pane) {
  $('chat-view').dataset.pane = pane;  // only a phone-sized screen shows one pane at a time
}

function newClientId() {
  // crypto.randomUUID exists only on https or localhost; a lab machine's address is neither.
  return (crypto.randomUUID && window.isSecureContext)
    ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// Text a user wrote, as an element of its own bidi isolate.
function isolated(text, className) {
  const bdi = document.createElement('bdi');
  if (className) bdi.className = className;
  bdi.textContent = text;
  return bdi;
}

// The same for plain strings such as tooltips: FIRST STRONG ISOLATE ... POP
// DIRECTIONAL ISOLATE.
function isolatedString(text) {
  return `\u2068${text}\u2069`;
}

// -- the conversation ----------------------------------------------------------

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

// One message: who and when (unless it continues its author's run), its
// text or, while it is being edited here, the editor, and its actions.
function messageElement(item, continued) {
  const li = document.createElement('li');
  li.className = 'message' + (item.user_id === state.user.id ? ' mine' : '') + (continued ? ' continued' : '');
  li.dataset.id = item.id ?? '';
  li.tabIndex = -1;  // a tap or click focuses the message, and that shows its actions (chat.css)
  const when = new Date(item.timestamp * 1000);
  li.title = `${isolatedString(item.username)}, ${when.toLocaleString()}`;
  if (!continued) li.append(metaFor(item, when));
  if (state.editing && state.editing.id === item.id) {
    li.append(editorFor());
    return li;
  }
  const content = document.createElement('p');
  content.className = 'content';
  content.dir = 'auto';  // a message in Arabic or Hebrew reads right to left
  content.textContent = item.content;
  li.append(content);
  if (continued && item.edited_at) li.append(editedMark(item));  // no time to stand beside
  const actions = actionsFor(item);
  if (actions) li.append(actions);
  return li;
}

function metaFor(item, when) {
  const time = document.createElement('time');
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.append(isolated(item.username, 'author'), ' · ', time);
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

function renderConversation() {
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
  restoreFocus(focused);
}

// Rendering replaces the list's elements; a keyboard user inside it (on a
// message's button, or typing in its editor) must not be thrown out.
function focusInConversation() {
  const active = document.activeElement;
  const li = active && active.closest('#messages li[data-id]');
  if (!li) return null;
  return {id: li.dataset.id, control: active.dataset.control,
          selection: active.dataset.control === 'editor' ? [active.selectionStart, active.selectionEnd] : null};
}

function restoreFocus(focused) {
  if (!focused) return;
  const li = $('messages').querySelector(`li[data-id="${focused.id}"]`);
  const target = li ? (li.querySelector(`[data-control="${focused.control}"]`) || li) : $('message-input');
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
function addNotice(...parts) {
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
  clearTyping(message.user_id);
  appendItem({kind: 'message', ...message}, message.user_id === state.user.id);
}

function fromHistory(message) {
  return {id: message.id, user_id: message.user_id, username: message.sender.username,
          content: message.content, timestamp: message.timestamp, edited_at: message.edited_at};
}

async function loadHistory(roomId) {
  state.items = [];
  state.seenIds = new Set();
  state.reachedStart = false;
  state.editing = state.confirmingDelete = null;
  state.pendingLive = [];  // live frames wait until history is on screen, then follow it
  let page = [];
  try {
    page = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=${PAGE}`)).messages;
  } catch (error) {
    showError(error.message);
  }
  if (roomId !== state.joinedRoomId) return;
  state.reachedStart = page.length < PAGE;
  for (const message of page) {
    state.seenIds.add(message.id);
    rememberLastId(message.id);
    state.items.push({kind: 'message', ...fromHistory(message)});
  }
  renderConversation();
  scrollToBottom();
  const pending = state.pendingLive;
  state.pendingLive = null;
  pending.forEach(applyMessageFrame);
  fillTheView();
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
    showError(error.message);
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

// -- editing and deleting messages --------------------------------------------
// Both go over REST (PATCH and DELETE /messages/{id}) rather than the
// socket's edit_message and delete_message: the answer belongs to the
// request, so an error ("You cannot change this message") is shown beside
// the editor it is about. Everyone in the room, this page included, also
// hears message_updated or message_deleted; applying either twice is harmless.

// The room's creator and admins may delete anyone's message and remove members.
// Not in a direct room: neither of its two is in charge of the other (and
// admins do not see it at all).
function moderating() {
  const room = currentRoom();
  if (room && room.kind === 'direct') return false;
  return state.role === 'admin' || Boolean(room && room.creator_id === state.user.id);
}

function currentRoom() {
  return state.rooms.find((r) => r.id === state.joinedRoomId);
}

// The room list and the role arrive after the conversation may be on
// screen; what they allow is redrawn only when it changes.
function permissionsChanged() {
  showAddMember(mayAddMembers());
  const direct = currentRoom()?.kind === 'direct';
  const moderatingChanged = moderating() !== state.moderating;
  if (!moderatingChanged && direct === state.inDirectRoom) return;
  state.inDirectRoom = direct;
  if (moderatingChanged) {
    state.moderating = !state.moderating;
    renderConversation();
  }
  renderMembers();
}

// "Edit" on one's own messages; "Delete" on those, and on all for moderators.
function actionsFor(item) {
  if (item.id == null) return null;  // never saved: nothing to change
  if (state.confirmingDelete === item.id) return deleteQuestion(item);
  const mine = item.user_id === state.user.id;
  const buttons = [];
  if (mine) buttons.push(controlButton('Edit', 'edit'));
  if (mine || moderating()) buttons.push(controlButton('Delete', 'delete'));
  if (buttons.length === 0) return null;
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(...buttons);
  return actions;
}

// Asked in the page (window.confirm would stop every script, the socket's included).
function deleteQuestion(item) {
  const question = document.createElement('span');
  question.id = `delete-question-${item.id}`;
  question.textContent = 'Delete this message?';
  const actions = document.createElement('div');
  actions.className = 'actions asking';
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-labelledby', question.id);
  actions.append(question, controlButton('Confirm delete', 'confirm-delete', 'danger'),
                 controlButton('Cancel', 'cancel-delete'));
  return actions;
}

// A button that one listener on its list acts on, by data-control.
function controlButton(text, control, className) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = text;
  button.dataset.control = control;
  if (className) button.className = className;
  return button;
}

function editorFor() {
  const input = document.createElement('textarea');
  input.dataset.control = 'editor';
  input.setAttribute('aria-label', 'Edit message');
  input.maxLength = 4000;
  input.rows = 3;
  input.dir = 'auto';
  input.value = state.editing.draft;
  const error = document.createElement('span');
  error.className = 'edit-error';
  error.setAttribute('role', 'alert');
  error.textContent = state.editing.error;
  error.hidden = !state.editing.error;
  const save = controlButton('Save', 'save');
  save.type = 'submit';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(save, controlButton('Cancel', 'cancel-edit'));
  const form = document.createElement('form');
  form.className = 'editor';
  form.append(input, error, buttons);
  return form;
}

function findMessage(id) {
  return state.items.find((item) => item.kind === 'message' && item.id === id);
}

// One message drawn again where it is (edited, or opening its editor or
// question): the list is aria-live, and rebuilding all of it would have
// a screen reader read the whole conversation again.
function redrawMessage(id) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === id);
  const old = $('messages').querySelector(`li[data-id="${id}"]`);
  if (index < 0 || !old) return;
  const focused = focusInConversation();
  old.replaceWith(elementsFor(state.items[index], lastMessage(state.items.slice(0, index))).pop());
  restoreFocus(focused);
}

function focusControl(id, control) {
  const element = $('messages').querySelector(`li[data-id="${id}"] [data-control="${control}"]`);
  if (element) element.focus();
  return element;
}

function startEditing(id) {
  const item = findMessage(id);
  if (!item) return;
  const asked = state.confirmingDelete;
  state.editing = {id, draft: item.content, error: ''};
  state.confirmingDelete = null;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  const input = focusControl(id, 'editor');
  input.setSelectionRange(input.value.length, input.value.length);
}

function stopEditing() {
  const {id} = state.editing;
  state.editing = null;
  redrawMessage(id);
  focusControl(id, 'edit');
}

async function saveEdit() {
  const {id, draft} = state.editing;
  if (draft === findMessage(id)?.content) return stopEditing();
  try {
    const message = await api('PATCH', `/messages/${id}`, {content: draft});
    const wasFocused = document.activeElement.closest(`#messages li[data-id="${id}"]`);
    if (state.editing && state.editing.id === id) state.editing = null;
    applyUpdate(message);
    if (wasFocused) focusControl(id, 'edit');
  } catch (error) {
    showEditError(id, error.message);
  }
}

function showEditError(id, text) {
  if (!state.editing || state.editing.id !== id) return showError(text);
  state.editing.error = text;
  const error = $('messages').querySelector(`li[data-id="${id}"] .edit-error`);
  error.textContent = text;
  error.hidden = false;
}

function askToDelete(id) {
  const asked = state.confirmingDelete;
  state.confirmingDelete = id;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  focusControl(id, 'confirm-delete');
}

function cancelDelete() {
  const id = state.confirmingDelete;
  state.confirmingDelete = null;
  redrawMessage(id);
  focusControl(id, 'delete');
}

async function deleteMessage(id) {
  try {
    removeMessage(await api('DELETE', `/messages/${id}`));
  } catch (error) {
    showError(error.message);
    if (state.confirmingDelete === id) cancelDelete();
  }
}

// message_updated, or the answer to our own edit: the new text, "(edited)".
function applyUpdate(data) {
  const item = findMessage(data.id);
  if (!item) return;
  item.content = data.content;
  item.edited_at = data.edited_at;
  redrawMessage(data.id);
}

// message_deleted, or the answer to our own delete. Its id stays seen, so
// that nothing brings it back.
function removeMessage(data) {
  const index = state.items.findIndex((item) => item.kind === 'message' && item.id === data.id);
  if (index < 0) return;
  const [gone] = state.items.splice(index, 1);
  if (state.editing && state.editing.id === gone.id) state.editing = null;
  if (state.confirmingDelete === gone.id) state.confirmingDelete = null;
  const li = $('messages').querySelector(`li[data-id="${gone.id}"]`);
  const hadFocus = li && li.contains(document.activeElement);
  if (li) dropMessageElement(li, state.items.slice(index).find((item) => item.kind === 'message'));
  showConversationEmpty();
  if (hadFocus && !$('message-input').disabled) $('message-input').focus();
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

// A live frame about the room's messages, in the order the server sent it.
function applyMessageFrame(data) {
  if (data.type === 'message_updated') applyUpdate(data);
  else if (data.type === 'message_deleted') removeMessage(data);
  else addMessage(data);
}

// What each button in a message does, by its data-control (one listener on the list).
const MESSAGE_CONTROLS = {
  edit: startEditing,
  'cancel-edit': stopEditing,
  delete: askToDelete,
  'confirm-delete': deleteMessage,
  'cancel-delete': cancelDelete,
};

// -- typing -------------------------------------------------------------------

function renderTyping() {
  const now = Date.now();
  for (const [userId, who] of state.typing) if (who.until <= now) state.typing.delete(userId);
  const names = [...state.typing.values()].map((who) => isolated(who.username));
  const line = names.flatMap((name, i) => (i === 0 ? [name] : [', ', name]));
  if (names.length > 0) line.push(names.length === 1 ? ' is typing…' : ' are typing…');
  $('typing').replaceChildren(...line);
}

function showTyping(data) {
  if (data.room_id !== state.joinedRoomId || data.user_id === state.user.id) return;
  state.typing.set(data.user_id, {username: data.username, until: Date.now() + TYPING_SHOWN_MS});
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function clearTyping(userId) {
  if (state.typing.delete(userId)) renderTyping();
}

function tellTyping() {
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_EVERY_MS || !state.joinedRoomId) return;
  state.lastTypingSent = now;
  send({type: 'typing'}, true);
}

// -- signing in and out, and staying signed in ---------------------------------

function saveSession(data) {
  state.token = data.token;
  state.user = {id: data.id, username: data.username};
  sessionStorage.setItem('swiftchat.token', state.token);
  sessionStorage.setItem('swiftchat.user', JSON.stringify(state.user));
  scheduleRefresh();
  // An open connection is given each new token (after a refresh or a new
  // password); the server keeps it in its room, and onAuthenticated ignores the answer.
  send({type: 'auth', token: state.token}, true);
}

// A token lives an hour; ask for a new one a few minutes before it ends,
// so a page left open stays signed in.
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  let expires;
  try {
    const claims = JSON.parse(atob(state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    expires = claims.exp * 1000;
  } catch (error) {
    return;
  }
  const wait = Math.max(10_000, expires - Date.now() - REFRESH_BEFORE_MS);
  state.refreshTimer = setTimeout(async () => {
    try {
      saveSession(await api('POST', '/auth/refresh'));
    } catch (error) {
      showError('Could not renew your session: ' + error.message);
    }
  }, wait);
}

// A program that embeds the chat signs its own users in: it opens the page
// with a token of theirs in the URL's fragment (#token=...), which a browser
// never sends to any server (README, "Embedding"). The token leaves the
// address bar and the history at once, before anything can fail.
function tokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) history.replaceState(history.state, '', location.pathname + location.search);
  return token;
}

// Then it is kept as a login's token is; GET /users/me says whose it is.
async function signInWithToken(token) {
  showError('');
  state.token = token;
  try {
    const {user} = await api('GET', '/users/me');
    if (!state.user || state.user.id !== user.id) {  // another user's room and place are not ours
      sessionStorage.clear();
      Object.assign(state, {roomId: null, lastIdByRoom: {}, unsent: []});
    }
    saveSession({token, id: user.id, username: user.username});
    showChat();
  } catch (error) {
    if (state.token) logout(error.message);  // else a 401 signed the page out, saying why
  }
}

async function signIn(path) {
  showError('');
  try {
    saveSession(await api('POST', path, {username: $('username').value, password: $('password').value}));
    $('password').value = '';
    showChat();
  } catch (error) {
    showError(error.message);
  }
}

// "Log out": the server ends the session, then the page forgets it. Our
// socket goes first, so that neither its close nor the server's 4001 is
// taken for a dropped connection.
async function endSession() {
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000);
  try {
    await api('POST', '/auth/logout');
  } catch (error) {
    // Ended already, or the server is out of reach: signing out here is all that is left.
  }
  logout();
}

// Forget the session on this page (the server may not know: see endSession).
function logout(reason) {
  state.token = null;  // first, so the socket's close does not reconnect
  clearTimeout(state.refreshTimer);
  if (state.socket) state.socket.close(1000);
  sessionStorage.clear();
  Object.assign(state, {user: null, roomId: null, joinedRoomId: null, socket: null, items: [], unsent: [],
                        role: 'user', moderating: false, inDirectRoom: false, editing: null,
                        confirmingDelete: null, users: []});
  showPasswordForm(false);
  showAddMember(false);
  if ($('admin-view').open) $('admin-view').close();
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('change-password').hidden = true;
  $('admin').hidden = true;
  $('logout').hidden = true;
  $('whoami').textContent = '';
  setStatus('');
  showError(reason || '');
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('change-password').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = state.user.username;
  $('whoami').title = state.user.username;
  showPane(state.roomId ? 'conversation' : 'rooms');
  scheduleRefresh();
  refreshRooms();
  loadRole();
  connect();
}

// The role decides who sees "Admin" and may moderate every room. It is
// not kept with the session: an admin may have changed it since.
async function loadRole() {
  try {
    setRole((await api('GET', '/users/me')).user.role);
  } catch (error) {
    if (state.token) showError(error.message);  // else the session ended, and logout said so
  }
}

function setRole(role) {
  state.role = role;
  $('admin').hidden = role !== 'admin';
  if (role !== 'admin' && $('admin-view').open) $('admin-view').close();
  permissionsChanged();
}

// -- a new password -------------------------------------------------------------

function showPasswordForm(shown) {
  $('password-form').hidden = !shown;
  $('change-password').setAttribute('aria-expanded', String(shown));
  $('password-form').reset();
  showPasswordOutcome('', '');
  if (shown) $('old-password').focus();
}

function showPasswordOutcome(error, done) {
  $('password-error').textContent = error;
  $('password-changed').textContent = done;
}

// The answer is a token of this same session, as login's; every other
// session of the user ends (their sockets are closed with 4001).
async function changePassword() {
  showPasswordOutcome('', '');
  try {
    saveSession(await api('POST', '/auth/password',
                          {old_password: $('old-password').value, new_password: $('new-password').value}));
    $('password-form').reset();
    showPasswordOutcome('', 'Password changed');
  } catch (error) {
    showPasswordOutcome(error.message, '');
  }
}

// -- rooms ------------------------------------------------------------------

async function refreshRooms() {
  try {
    state.rooms = (await api('GET', '/rooms?limit=100')).rooms;
  } catch (error) {
    showError(error.message);
    return;
  }
  renderRooms();
}

// Rooms under "Rooms", direct rooms under "Direct messages".
function renderRooms() {
  const rooms = state.rooms.filter((room) => room.kind !== 'direct');
  const direct = state.rooms.filter((room) => room.kind === 'direct');
  $('no-rooms').hidden = rooms.length > 0;
  $('room-list').replaceChildren(...rooms.map(roomItem));
  $('no-direct').hidden = direct.length > 0;
  $('direct-list').replaceChildren(...direct.map(roomItem));
  renderRoomHeader();
}

function roomItem(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.roomId = room.id;
  button.setAttribute('aria-current', String(room.id === state.joinedRoomId));
  const name = roomName(room);
  button.append(isolated(name, 'room-name'));
  if (room.kind === 'direct') {
    button.title = `Direct messages with ${isolatedString(name)}`;
  } else {
    button.title = room.description ? `${isolatedString(name)}: ${isolatedString(room.description)}` : name;
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = `${room.member_count} member${room.member_count === 1 ? '' : 's'}`
      + (room.visibility === 'private' ? ' · private' : '');
    button.append(count);
  }
  button.addEventListener('click', () => joinRoom(room.id));
  const item = document.createElement('li');
  item.append(button);
  return item;
}

// A direct room is named for its two members ("alice & bob"); each of them
// sees the other's name. Usernames hold no spaces or "&", so the split is
// unambiguous; letter case is compared loosely, as the server compares names.
function roomName(room) {
  if (room.kind !== 'direct') return room.name;
  const name = room.name.toLowerCase(), me = state.user.username.toLowerCase();
  if (name.startsWith(`${me} & `)) return room.name.slice(me.length + 3);
  if (name.endsWith(` & ${me}`)) return room.name.slice(0, -(me.length + 3));
  return room.name;
}

function renderRoomHeader() {
  const room = currentRoom();
  const direct = Boolean(room && room.kind === 'direct');
  $('room-title').textContent = room ? roomName(room) : 'Pick a room to start chatting';
  $('room-title').title = room ? roomName(room) : '';
  $('room-about').textContent = room ? room.description : '';
  $('room-about').title = room ? room.description : '';
  // A direct room cannot be left, described or deleted, by anyone (the server answers 403).
  $('leave-room').hidden = direct;
  $('creator-tools').hidden = !(room && room.creator_id === state.user.id) || direct;
  if (room && document.activeElement !== $('new-description')) {
    $('new-description').value = room.description;
  }
  permissionsChanged();
}

// A room new to this user's list: created (by us, or by anyone if public),
// a direct room opened by either of its two, or a private room we were added to.
function addRoom(room) {
  if (!state.rooms.some((r) => r.id === room.id)) state.rooms.push(room);
  renderRooms();
}

function onRoomListChanged(data) {
  const {type, ...listed} = data;
  if (type === 'room_created' || type === 'room_added') return addRoom(listed);
  if (type === 'room_updated') {
    const room = state.rooms.find((r) => r.id === data.room_id);
    if (room) room.description = data.description;
  } else {
    state.rooms = state.rooms.filter((r) => r.id !== data.room_id);
    if (data.room_id === state.joinedRoomId || data.room_id === state.roomId) {
      onRoomGone('This room was deleted by its creator.');
    }
  }
  renderRooms();
}

function joinRoom(roomId) {
  showError('');
  showPane('conversation');
  if (roomId === state.joinedRoomId) return;
  state.roomId = roomId;
  sessionStorage.setItem('swiftchat.room', roomId);
  send({type: 'join_room', room_id: roomId});
}

// room_joined: a fresh join loads history; a rejoin that recovered keeps
// what is on screen, and the missed messages follow as replayed frames.
async function onRoomJoined(data) {
  const rejoined = data.room_id === state.joinedRoomId || data.recovered !== undefined;
  if (data.room_id !== state.joinedRoomId) showAddMemberForm(false);  // it was for the room before
  state.joinedRoomId = data.room_id;
  setConnected(true);
  renderRooms();
  refreshMembers();
  $('message-input').focus();
  if (!(rejoined && data.recovered)) await loadHistory(data.room_id);
  // Messages we sent here but never saw confirmed: the same client_id makes a resend safe.
  state.unsent = state.unsent.filter((message) => message.room_id === data.room_id);
  for (const {content, client_id} of state.unsent) send({type: 'send_message', content, client_id});
}

// The room was deleted, or we were removed from it: its conversation goes,
// and a notice (parts as for addNotice) says why.
function onRoomGone(...notice) {
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  setConnected(true);
  Object.assign(state, {items: [], editing: null, confirmingDelete: null});
  renderConversation();
  addNotice(...notice);
  state.members = [];
  renderMembers();
  refreshRooms();
}

// room_removed: the room's creator or an admin took us out; the server
// has already taken this connection out of the room.
function onRemovedFromRoom(data) {
  if (data.room_id !== state.joinedRoomId && data.room_id !== state.roomId) return;
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (room) onRoomGone('You were removed from ', {user: room.name}, '.');
  else onRoomGone('You were removed from this room.');
}

async function leaveRoom() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    await api('POST', '/rooms/leave', {room_id: roomId});
  } catch (error) {
    showError(error.message);
    return;
  }
  send({type: 'leave_room'});
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  state.items = [];
  state.members = [];
  renderConversation();
  renderMembers();
  setConnected(true);
  showPane('rooms');
  refreshRooms();
}

// -- members ------------------------------------------------------------------

async function refreshMembers() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    const members = (await api('GET', `/rooms/${encodeURIComponent(roomId)}/members`)).members;
    if (roomId === state.joinedRoomId) state.members = members;
  } catch (error) {
    showError(error.message);
  }
  renderMembers();
}

function renderMembers() {
  $('no-members').hidden = Boolean(state.joinedRoomId);
  const mayRemove = state.joinedRoomId && moderating();
  // Online first, then by name.
  const members = [...state.members].sort((a, b) =>
    (b.is_online - a.is_online) || a.username.localeCompare(b.username));
  $('member-list').replaceChildren(...members.map((member) => {
    const li = document.createElement('li');
    li.className = 'member' + (member.is_online ? '' : ' offline');
    li.dataset.userId = member.id;
    const dot = document.createElement('span');
    dot.className = 'dot' + (member.is_online ? ' online' : '');
    dot.setAttribute('aria-label', member.is_online ? 'online' : 'offline');
    dot.setAttribute('role', 'img');
    const name = isolated(member.username, 'name');
    name.title = member.username;
    li.append(dot, name);
    if (member.in_room) {
      const here = document.createElement('span');
      here.className = 'here';
      here.textContent = 'here';
      here.title = 'in this room now';
      li.append(here);
    }
    if (member.id === state.user.id) return li;
    if (!state.inDirectRoom) li.append(messageButton(member));  // it would lead back here
    if (mayRemove) li.append(removeButton(member));
    return li;
  }));
}

function removeButton(member) {
  const button = controlButton('Remove', 'remove', 'remove');
  button.title = `Remove ${isolatedString(member.username)} from this room`;
  return button;
}

// No ban: the member may join again. Their connections in the room leave
// it and are told (room_removed); the room hears user_left if they were here.
async function removeMember(userId) {
  const roomId = state.joinedRoomId;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(userId)}`);
  } catch (error) {
    showError(error.message);
  }
  refreshMembers();
  refreshRooms();
}

// -- private rooms and direct messages ------------------------------------------

function messageButton(member) {
  const button = controlButton('Message', 'message');
  button.title = `Direct messages with ${isolatedString(member.username)}`;
  return button;
}

// "Message": the direct room of the two of us, the same one each time from
// either side. Both our connections hear room_created the first time; the
// answer is here first, so the room is listed before we join it.
async function openDirect(userId) {
  showError('');
  try {
    const room = await api('POST', '/direct', {user_id: userId});
    addRoom({...room, member_count: 2});
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
}

// What each button of a member's row does, by its data-control.
const MEMBER_CONTROLS = {
  message: openDirect,
  remove: removeMember,
};

// Nobody joins a private room by themselves: its creator, or an admin, adds them.
function mayAddMembers() {
  const room = currentRoom();
  return Boolean(room && room.visibility === 'private' && room.kind === 'room'
                 && (room.creator_id === state.user.id || state.role === 'admin'));
}

function showAddMember(allowed) {
  $('add-member').hidden = !allowed;
  if (!allowed) showAddMemberForm(false);
}

// The form is a copy of its template, put in the page while open (see index.html).
function showAddMemberForm(shown) {
  const open = $('add-member-form');
  $('add-member').setAttribute('aria-expanded', String(shown));
  if (!shown) {
    if (open) open.remove();
    return;
  }
  if (open) return open.elements.username.focus();
  const form = $('add-member-template').content.firstElementChild.cloneNode(true);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    addMember(form);
  });
  form.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    showAddMemberForm(false);
    $('add-member').focus();
  });
  $('add-member').after(form);
  form.elements.username.focus();
}

function showAddMemberOutcome(form, error, done) {
  form.querySelector('[role=alert]').textContent = error;
  form.querySelector('[role=status]').textContent = done;
}

// The form stays open, emptied, for the next name. The added user's
// connections hear room_added, which puts the room in their list.
async function addMember(form) {
  const roomId = state.joinedRoomId;
  const username = form.elements.username.value.trim();
  showAddMemberOutcome(form, '', '');
  try {
    const user = await findUser(username);
    if (!user) return showAddMemberOutcome(form, `Nobody is called ${isolatedString(username)}`, '');
    const member = await api('POST', `/rooms/${encodeURIComponent(roomId)}/members`, {user_id: user.id});
    form.elements.username.value = '';
    showAddMemberOutcome(form, '', `${isolatedString(member.username)} was added`);
    refreshMembers();
    refreshRooms();  // its member count
  } catch (error) {
    showAddMemberOutcome(form, error.message, '');
  }
}

// GET /users has no search by name: read it 100 at a time until the name
// turns up. Names are unique whatever their letter case, as at login.
async function findUser(username) {
  const wanted = username.toLowerCase();
  for (let seen = 0; ;) {
    const page = await api('GET', `/users?limit=100&offset=${seen}`);
    const user = page.users.find((u) => u.username.toLowerCase() === wanted);
    seen += page.users.length;
    if (user || page.users.length === 0 || seen >= page.total) return user || null;
  }
}

// -- administration (admins only) -----------------------------------------------

async function openAdmin() {
  state.settingPasswordFor = null;
  showAdminOutcome('', '');
  $('admin-view').showModal();
  try {
    state.users = await allUsers();
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
  renderUsers();
}

// GET /users answers at most 100 at a time.
async function allUsers() {
  const users = [];
  for (;;) {
    const page = await api('GET', `/users?limit=100&offset=${users.length}`);
    users.push(...page.users);
    if (page.users.length === 0 || users.length >= page.total) return users;
  }
}

function showAdminOutcome(error, done) {
  $('admin-error').textContent = error;
  $('admin-error').hidden = !error;
  $('admin-status').textContent = done;
}

// A keyboard user stays on the control they used ("Disable" becomes
// "Enable" in the same place); past the row's end, its last button.
function renderUsers() {
  const active = document.activeElement;
  const row = active.closest('#user-list li');
  const place = row && [...row.querySelectorAll('button, input')].indexOf(active);
  $('user-list').replaceChildren(...state.users.map(userRow));
  if (!row) return;
  const again = $('user-list').querySelector(`li[data-user-id="${row.dataset.userId}"]`);
  const controls = again ? again.querySelectorAll('button, input') : [];
  if (controls.length) (controls[place] || controls[controls.length - 1]).focus();
}

function userRow(user) {
  const li = document.createElement('li');
  li.className = 'user';
  li.dataset.userId = user.id;
  const about = document.createElement('span');
  about.className = 'about';
  about.textContent = [user.role, user.disabled ? 'disabled' : '', user.id === state.user.id ? 'you' : '']
    .filter(Boolean).join(', ');
  const admin = user.role === 'admin';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(controlButton(user.disabled ? 'Enable' : 'Disable', user.disabled ? 'enable' : 'disable'),
                 controlButton(admin ? 'Make user' : 'Make admin', admin ? 'make-user' : 'make-admin'),
                 controlButton('Set password', 'set-password'));
  li.append(isolated(user.username, 'name'), about, buttons);
  if (state.settingPasswordFor === user.id) li.append(setPasswordForm());
  return li;
}

function setPasswordForm() {
  const input = document.createElement('input');
  input.type = 'password';
  input.autocomplete = 'new-password';
  input.required = true;
  const label = document.createElement('label');
  label.append('New password ', input);
  const save = controlButton('Save password', 'save-password');
  save.type = 'submit';
  const form = document.createElement('form');
  form.className = 'set-password';
  form.append(label, save, controlButton('Cancel', 'cancel-password'));
  return form;
}

function showSetPassword(userId) {
  state.settingPasswordFor = userId;
  renderUsers();
  if (userId) $('user-list').querySelector(`li[data-user-id="${userId}"] input`).focus();
}

// Disabling or a new password ends the user's sessions (their sockets close with 4001).
async function updateUser(userId, changes, done) {
  showAdminOutcome('', '');
  try {
    const {user} = await api('PATCH', `/users/${encodeURIComponent(userId)}`, changes);
    state.users = state.users.map((listed) => (listed.id === user.id ? user : listed));
    if (changes.password !== undefined) state.settingPasswordFor = null;
    renderUsers();
    showAdminOutcome('', `${isolatedString(user.username)} ${done}`);
    if (state.user && user.id === state.user.id) setRole(user.role);
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
}

// What each button of a user's row does, by its data-control.
const USER_CONTROLS = {
  disable: (id) => updateUser(id, {disabled: true}, 'is disabled and signed out'),
  enable: (id) => updateUser(id, {disabled: false}, 'may sign in again'),
  'make-admin': (id) => updateUser(id, {role: 'admin'}, 'is an admin now'),
  'make-user': (id) => updateUser(id, {role: 'user'}, 'is no longer an admin'),
  'set-password': (id) => showSetPassword(id),
  'cancel-password': () => showSetPassword(null),
};

// -- the WebSocket ----------------------------------------------------------

// The server says where its WebSocket is (websocket_url: behind a proxy,
// --public-ws-url; else this page's host and the WebSocket port).
async function connect() {
  try {
    if (!state.wsUrl) state.wsUrl = (await api('GET', '/info')).websocket_url;
  } catch (error) {
    return reconnectLater();
  }
  // A page served over HTTPS may only open wss://.
  const url = location.protocol === 'https:' ? state.wsUrl.replace(/^ws:/, 'wss:') : state.wsUrl;
  const socket = new WebSocket(url);
  state.socket = socket;
  state.authenticated = false;
  setStatus('Connecting…');
  socket.onopen = () => socket.send(JSON.stringify({type: 'auth', token: state.token}));
  socket.onmessage = (event) => onFrame(JSON.parse(event.data));
  socket.onclose = (event) => onSocketClosed(socket, event);
}

function send(frame, quietly) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
  } else if (!quietly) {
    showError('Not connected. Reconnecting…');
  }
}

function onSocketClosed(socket, event) {
  if (socket !== state.socket || !state.token) return;  // replaced, or logged out
  state.socket = null;
  state.rejoinRoomId = state.joinedRoomId;  // to rejoin with `since`
  state.joinedRoomId = null;
  setConnected(false);
  if (event.code === 4000) {
    setStatus('Disconnected');
    showError('You signed in from another window, so this one was disconnected. Reload to take over.');
  } else if (event.code === 1008) {
    logout('Your session has expired. Please log in again.');
  } else if (event.code === SESSION_ENDED) {  // a new connection would be refused too
    logout('Your session has ended. Please log in again.');
  } else {
    reconnectLater();
  }
}

function reconnectLater() {
  setStatus('Offline');
  showError(`Connection lost. Reconnecting in ${Math.round(state.retryDelay / 100) / 10} s…`);
  setTimeout(() => { if (state.token) connect(); }, state.retryDelay);
  state.retryDelay = Math.min(state.retryDelay * 2, 10000);
}

function onFrame(frame) {
  if (!frame.success) {
    if (frame.error === 'Room not found') onRoomGone('That room no longer exists.');
    else if (frame.message === 'Failed to save message') showError('Your message could not be saved. Please send it again.');
    else showError(frame.error);
    return;
  }
  const data = frame.data;
  if (data.status === 'connected') return onAuthenticated();
  switch (data.type) {
    case 'room_joined': return onRoomJoined(data);
    case 'user_joined':
      addNotice({user: data.username}, ' joined');
      refreshMembers();
      return refreshRooms();
    case 'user_left':
      clearTyping(data.user_id);
      addNotice({user: data.username}, ' left');
      return refreshMembers();
    case 'user_typing': return showTyping(data);
    case 'message_sent':
      state.unsent = state.unsent.filter((m) => m.client_id !== data.client_id);
      // fall through: our own message is shown like anyone's
    case 'message_received':
    case 'message_updated':
    case 'message_deleted':
      if (data.room_id !== state.joinedRoomId) return;
      return state.pendingLive ? state.pendingLive.push(data) : applyMessageFrame(data);
    case 'room_removed': return onRemovedFromRoom(data);
    case 'room_created':
    case 'room_added':
    case 'room_updated':
    case 'room_deleted':
      return onRoomListChanged(data);
  }
}

function onAuthenticated() {
  if (state.authenticated) return;  // a renewed token accepted: same connection, same room
  state.authenticated = true;
  setStatus('Connected');
  showError('');
  state.retryDelay = 500;
  if (!state.roomId) return;
  const join = {type: 'join_room', room_id: state.roomId};
  // Back after a drop in the same room: ask only for what we missed.
  const lastId = state.lastIdByRoom[state.roomId];
  if (state.rejoinRoomId === state.roomId && lastId) join.since = lastId;
  send(join);
}

// -- wiring -----------------------------------------------------------------

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  signIn('/auth/login');
});
$('register-button').addEventListener('click', () => {
  if ($('login-form').reportValidity()) signIn('/auth/register');
});
$('logout').addEventListener('click', endSession);

$('change-password').addEventListener('click', () => showPasswordForm($('password-form').hidden));
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  changePassword();
});
$('password-form').addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  showPasswordForm(false);
  $('change-password').focus();
});

$('create-room-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError('');
  try {
    const room = await api('POST', '/rooms', {
      name: $('room-name').value, description: $('room-description').value,
      visibility: $('room-private').checked ? 'private' : 'public',
    });
    $('create-room-form').reset();
    addRoom({...room, member_count: 1});
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
});

function sendMessage() {
  const content = $('message-input').value;
  if (!content.trim() || !state.joinedRoomId) return;
  const client_id = newClientId();
  state.unsent.push({content, client_id, room_id: state.joinedRoomId});
  send({type: 'send_message', content, client_id});
  $('message-input').value = '';
  fitComposer();
}

function fitComposer() {
  const input = $('message-input');
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight + 2}px`;
}

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendMessage();
});
$('message-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();  // Enter sends; Shift+Enter is a new line
    sendMessage();
  }
});
$('message-input').addEventListener('input', () => {
  fitComposer();
  if ($('message-input').value.trim()) tellTyping();
});

$('messages').addEventListener('scroll', () => {
  if (nearBottom()) $('new-messages').hidden = true;
  if ($('messages').scrollTop < 60) loadOlder();
});
$('new-messages').addEventListener('click', scrollToBottom);

$('leave-room').addEventListener('click', leaveRoom);
$('back-to-rooms').addEventListener('click', () => showPane('rooms'));
$('show-members').addEventListener('click', () => showPane('members'));
$('back-to-conversation').addEventListener('click', () => showPane('conversation'));

$('description-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await api('PATCH', `/rooms/${encodeURIComponent(state.joinedRoomId)}`, {description: $('new-description').value});
    $('new-description').blur();
    $('creator-tools').open = false;
  } catch (error) {
    showError(error.message);
  }
});

$('delete-room').addEventListener('click', async () => {
  const roomId = state.joinedRoomId;
  if (!roomId || !confirm('Delete this room and all its messages?')) return;
  $('creator-tools').open = false;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}`);
  } catch (error) {
    showError(error.message);
  }
});

// The controls inside messages (see actionsFor and editorFor) and rows come and go; one listener each.
$('messages').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MESSAGE_CONTROLS[button.dataset.control];
  if (action) action(Number(button.closest('li').dataset.id));
});
$('messages').addEventListener('submit', (event) => {
  event.preventDefault();  // the editor's form: "Save"
  saveEdit();
});
$('messages').addEventListener('input', (event) => {
  if (event.target.dataset.control === 'editor') state.editing.draft = event.target.value;
});
$('messages').addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.editing) stopEditing();
  else if (event.key === 'Escape' && state.confirmingDelete != null) cancelDelete();
  else if (event.target.dataset.control === 'editor' && event.key === 'Enter' && !event.shiftKey
           && !event.isComposing) {
    event.preventDefault();  // as in the composer: Enter saves, Shift+Enter is a new line
    saveEdit();
  }
});

$('member-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MEMBER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('add-member').addEventListener('click', () => {
  showAddMemberForm($('add-member').getAttribute('aria-expanded') !== 'true');
});

$('admin').addEventListener('click', openAdmin);
$('close-admin').addEventListener('click', () => $('admin-view').close());
$('user-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && USER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('user-list').addEventListener('submit', (event) => {
  event.preventDefault();  // "Save password"
  const userId = event.target.closest('li').dataset.userId;
  updateUser(userId, {password: event.target.querySelector('input').value}, 'has a new password and is signed out');
});

const embeddedToken = tokenFromFragment();
if (embeddedToken) signInWithToken(embeddedToken);
else if (state.token && state.user) showChat();
// A host that hands an open page a new token changes only the fragment, which loads nothing.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
});
