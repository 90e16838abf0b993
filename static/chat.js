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
  wsPort: null,
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
  if (item.kind === 'notice') {
    const li = document.createElement('li');
    li.className = 'notice';
    if (item.who) li.append(isolated(item.who), ' ');
    li.append(item.text);
    return [li];
  }
  const elements = [];
  const newDay = !previous || dayLabel(previous.timestamp) !== dayLabel(item.timestamp);
  if (newDay) {
    const separator = document.createElement('li');
    separator.className = 'day';
    separator.textContent = dayLabel(item.timestamp);
    elements.push(separator);
  }
  const continued = !newDay && previous.user_id === item.user_id
    && item.timestamp - previous.timestamp < GROUP_SECONDS;
  const li = document.createElement('li');
  li.className = 'message' + (item.user_id === state.user.id ? ' mine' : '') + (continued ? ' continued' : '');
  li.dataset.id = item.id ?? '';
  const when = new Date(item.timestamp * 1000);
  li.title = `${isolatedString(item.username)}, ${when.toLocaleString()}`;
  if (!continued) {
    const time = document.createElement('time');
    time.dateTime = when.toISOString();
    time.textContent = when.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.append(isolated(item.username, 'author'), ' · ', time);
    li.append(meta);
  }
  const content = document.createElement('p');
  content.className = 'content';
  content.dir = 'auto';  // a message in Arabic or Hebrew reads right to left
  content.textContent = item.content;
  li.append(content);
  elements.push(li);
  return elements;
}

function lastMessage(items) {
  for (let i = items.length - 1; i >= 0; i--) if (items[i].kind === 'message') return items[i];
  return null;
}

function renderConversation() {
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

// A notice; `who`, a user's name, comes first and is isolated from the text.
function addNotice(text, who) {
  appendItem({kind: 'notice', text, who}, false);
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
          content: message.content, timestamp: message.timestamp};
}

async function loadHistory(roomId) {
  state.items = [];
  state.seenIds = new Set();
  state.reachedStart = false;
  state.pendingLive = [];  // live messages wait until history is on screen, then follow it
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
  pending.forEach(addMessage);
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
  Object.assign(state, {user: null, roomId: null, joinedRoomId: null, socket: null, items: [], unsent: []});
  showPasswordForm(false);
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('change-password').hidden = true;
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
  connect();
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

function renderRooms() {
  $('no-rooms').hidden = state.rooms.length > 0;
  $('room-list').replaceChildren(...state.rooms.map((room) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.roomId = room.id;
    button.title = room.description
      ? `${isolatedString(room.name)}: ${isolatedString(room.description)}` : room.name;
    button.setAttribute('aria-current', String(room.id === state.joinedRoomId));
    const name = isolated(room.name, 'room-name');
    const count = document.createElement('span');
    count.className = 'count';
    count.textContent = `${room.member_count} member${room.member_count === 1 ? '' : 's'}`;
    button.append(name, count);
    button.addEventListener('click', () => joinRoom(room.id));
    const item = document.createElement('li');
    item.append(button);
    return item;
  }));
  renderRoomHeader();
}

function renderRoomHeader() {
  const room = state.rooms.find((r) => r.id === state.joinedRoomId);
  $('room-title').textContent = room ? room.name : 'Pick a room to start chatting';
  $('room-title').title = room ? room.name : '';
  $('room-about').textContent = room ? room.description : '';
  $('room-about').title = room ? room.description : '';
  $('creator-tools').hidden = !(room && room.creator_id === state.user.id);
  if (room && document.activeElement !== $('new-description')) {
    $('new-description').value = room.description;
  }
}

function onRoomListChanged(data) {
  if (data.type === 'room_created') {
    const {type, ...room} = data;
    if (!state.rooms.some((r) => r.id === room.id)) state.rooms.push(room);
  } else if (data.type === 'room_updated') {
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

function onRoomGone(text) {
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  setConnected(true);
  addNotice(text);
  state.members = [];
  renderMembers();
  refreshRooms();
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
    return li;
  }));
}

// -- the WebSocket ----------------------------------------------------------

async function connect() {
  try {
    if (!state.wsPort) state.wsPort = (await api('GET', '/info')).ws_port;
  } catch (error) {
    return reconnectLater();
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.hostname}:${state.wsPort}`);
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
      addNotice('joined', data.username);
      refreshMembers();
      return refreshRooms();
    case 'user_left':
      clearTyping(data.user_id);
      addNotice('left', data.username);
      return refreshMembers();
    case 'user_typing': return showTyping(data);
    case 'message_sent':
      state.unsent = state.unsent.filter((m) => m.client_id !== data.client_id);
      // fall through: our own message is shown like anyone's
    case 'message_received':
      if (data.room_id !== state.joinedRoomId) return;
      return state.pendingLive ? state.pendingLive.push(data) : addMessage(data);
    case 'room_created':
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
    const room = await api('POST', '/rooms', {name: $('room-name').value, description: $('room-description').value});
    $('room-name').value = $('room-description').value = '';
    if (!state.rooms.some((r) => r.id === room.id)) state.rooms.push({...room, member_count: 1});
    renderRooms();
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

if (state.token && state.user) showChat();
