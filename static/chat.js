// SwiftChat's browser client. It uses only the public API, like any other
// client: REST for accounts, rooms and history, the WebSocket for live chat.
// Everything a user typed is put on the page with textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem('swiftchat.token'),
  user: JSON.parse(sessionStorage.getItem('swiftchat.user') || 'null'),
  roomId: sessionStorage.getItem('swiftchat.room'),  // the room to be in, kept across reloads
  joinedRoomId: null,  // the room this connection is in now
  rooms: [],
  socket: null,
  wsPort: null,
  retryDelay: 500,     // ms; doubles after each failed reconnect, up to 10 s
  pendingLive: null,   // live messages that arrive while history is loading
};

// -- REST -------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {'Content-Type': 'application/json'};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const response = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await response.json();
  if (response.status === 401 && state.token && !path.startsWith('/auth/')) {
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
  $('message-input').disabled = !(connected && state.joinedRoomId);
  $('send-button').disabled = $('message-input').disabled;
}

function addNotice(text) {
  const item = document.createElement('li');
  item.className = 'notice';
  item.textContent = text;
  appendToConversation(item);
}

function renderMessage(message) {
  const item = document.createElement('li');
  item.className = message.user_id === state.user.id ? 'message mine' : 'message';
  const meta = document.createElement('span');
  meta.className = 'meta';
  const time = new Date(message.timestamp * 1000).toLocaleTimeString();
  meta.textContent = `${message.username} · ${time}`;
  const content = document.createElement('p');
  content.className = 'content';
  content.textContent = message.content;
  item.append(meta, content);
  appendToConversation(item);
}

function appendToConversation(item) {
  const list = $('messages');
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

// -- signing in and out -----------------------------------------------------

async function signIn(path) {
  showError('');
  try {
    const data = await api('POST', path, {username: $('username').value, password: $('password').value});
    state.token = data.token;
    state.user = {id: data.id, username: data.username};
    sessionStorage.setItem('swiftchat.token', state.token);
    sessionStorage.setItem('swiftchat.user', JSON.stringify(state.user));
    $('password').value = '';
    showChat();
  } catch (error) {
    showError(error.message);
  }
}

function logout(reason) {
  state.token = null;  // first, so the socket's close does not reconnect
  if (state.socket) state.socket.close(1000);
  sessionStorage.clear();
  Object.assign(state, {user: null, roomId: null, joinedRoomId: null, socket: null});
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('logout').hidden = true;
  $('whoami').textContent = '';
  setStatus('');
  showError(reason || '');
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = state.user.username;
  refreshRooms();
  connect();
}

// -- rooms ------------------------------------------------------------------

async function refreshRooms() {
  try {
    state.rooms = (await api('GET', '/rooms?limit=100')).rooms;
  } catch (error) {
    showError(error.message);
    return;
  }
  const list = $('room-list');
  list.replaceChildren(...state.rooms.map((room) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.roomId = room.id;
    button.setAttribute('aria-current', String(room.id === state.joinedRoomId));
    const name = document.createElement('span');
    name.textContent = room.name;
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
  $('room-about').textContent = room ? room.description : '';
  $('creator-tools').hidden = !(room && room.creator_id === state.user.id);
  if (room && document.activeElement !== $('new-description')) {
    $('new-description').value = room.description;
  }
}

function joinRoom(roomId) {
  showError('');
  if (roomId === state.joinedRoomId) return;
  state.roomId = roomId;
  sessionStorage.setItem('swiftchat.room', roomId);
  send({type: 'join_room', room_id: roomId});
}

async function onRoomJoined(roomId) {
  state.joinedRoomId = roomId;
  $('messages').replaceChildren();
  setConnected(true);
  refreshRooms();
  // Live messages that arrive while history loads wait, then follow it;
  // one that is in both (saved just after the join) is shown once.
  state.pendingLive = [];
  let history = [];
  try {
    history = (await api('GET', `/messages?room_id=${encodeURIComponent(roomId)}&limit=50`)).messages;
  } catch (error) {
    showError(error.message);
  }
  const key = (m) => `${m.user_id}|${m.timestamp}|${m.content}`;
  const seen = new Set(history.map(key));
  history.forEach((m) => renderMessage({...m, username: m.sender.username}));
  const pending = state.pendingLive;
  state.pendingLive = null;
  pending.filter((m) => !seen.has(key(m))).forEach(renderMessage);
  $('message-input').focus();
}

function onRoomGone(text) {
  state.roomId = state.joinedRoomId = null;
  sessionStorage.removeItem('swiftchat.room');
  setConnected(true);
  addNotice(text);
  refreshRooms();
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
  setStatus('Connecting…');
  socket.onopen = () => socket.send(JSON.stringify({type: 'auth', token: state.token}));
  socket.onmessage = (event) => onFrame(JSON.parse(event.data));
  socket.onclose = (event) => onSocketClosed(socket, event);
}

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
  } else {
    showError('Not connected. Reconnecting…');
  }
}

function onSocketClosed(socket, event) {
  if (socket !== state.socket || !state.token) return;  // replaced, or logged out
  state.socket = null;
  state.joinedRoomId = null;
  setConnected(false);
  if (event.code === 4000) {
    setStatus('Disconnected');
    showError('You signed in from another window, so this one was disconnected. Reload to take over.');
  } else if (event.code === 1008) {
    logout('Your session has expired. Please log in again.');
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
    else showError(frame.error);
    return;
  }
  const data = frame.data;
  if (data.status === 'connected') return onAuthenticated();
  switch (data.type) {
    case 'room_joined': return onRoomJoined(data.room_id);
    case 'user_joined': addNotice(`${data.username} joined`); return refreshRooms();
    case 'user_left': return addNotice(`${data.username} left`);
    case 'message_sent':
    case 'message_received':
      return state.pendingLive ? state.pendingLive.push(data) : renderMessage(data);
    case 'room_deleted': return onRoomGone('This room was deleted by its creator.');
  }
}

function onAuthenticated() {
  setStatus('Connected');
  showError('');
  state.retryDelay = 500;
  if (state.roomId) send({type: 'join_room', room_id: state.roomId});
}

// -- wiring -----------------------------------------------------------------

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  signIn('/auth/login');
});
$('register-button').addEventListener('click', () => {
  if ($('login-form').reportValidity()) signIn('/auth/register');
});
$('logout').addEventListener('click', () => logout());

$('create-room-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError('');
  try {
    const room = await api('POST', '/rooms', {name: $('room-name').value, description: $('room-description').value});
    $('room-name').value = $('room-description').value = '';
    await refreshRooms();
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
});

$('send-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const content = $('message-input').value;
  if (!content.trim()) return;
  send({type: 'send_message', content});
  $('message-input').value = '';
});

$('description-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await api('PATCH', `/rooms/${encodeURIComponent(state.joinedRoomId)}`, {description: $('new-description').value});
    $('new-description').blur();
    refreshRooms();
  } catch (error) {
    showError(error.message);
  }
});

$('delete-room').addEventListener('click', async () => {
  const roomId = state.joinedRoomId;
  if (!roomId || !confirm('Delete this room and all its messages?')) return;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}`);
  } catch (error) {
    showError(error.message);
  }
});

if (state.token && state.user) showChat();
