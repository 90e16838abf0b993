// The WebSocket: connecting where GET /info says, authenticating, sending
// frames, and coming back after a drop (reconnecting with a growing delay,
// then rejoining the room with `since`, so that the server replays only what
// was missed). A close that ends the session signs the page out (session.js).
// What a frame means is the business of the part of the screen it is about:
// FRAMES, at the end, names the function each kind of frame goes to, as the
// server's swiftchat_ws.ACTIONS does for the frames it receives.

import {state} from './state.js';
import {api} from './api.js';
import {setStatus, showError} from './dom.js';
import {logout} from './session.js';
import {showTyping, onMessageSent, onReplyRefused} from './composer.js';
import {onMessageFrame} from './messages.js';
import {onUserJoined, onUserLeft, onMemberUpdated} from './members.js';
import {refreshRoomsSoon, onRoomListChanged} from './rooms.js';
import {setConnected, onRoomJoined, onRoomGone, onRemovedFromRoom} from './room.js';
import {onReadMarker, onRoomActivity, onMention} from './reading.js';
import {loadOpenReports, onReport} from './reports.js';
import {onPostRefused} from './posting.js';
import {askForNewPassword} from './session.js';
import {onUserUpdated} from './names.js';

const SESSION_ENDED = 4001;         // close code: logged out elsewhere, password changed, or too old

// The server says where its WebSocket is (websocket_url: behind a proxy,
// --public-ws-url; else this page's host and the WebSocket port).
export async function connect() {
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

export function send(frame, quietly) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
  } else if (!quietly) {
    showError('Not connected. Reconnecting…');
  }
}

function onSocketClosed(socket, event) {
  if (socket !== state.socket || !state.token) return;  // replaced, or logged out
  forgetSocket();
  if (event.code === 4000) {
    setStatus('Disconnected');
    showError('You signed in from another window, so this one was disconnected. Reload to take over.');
  } else if (event.code === 1008 && event.reason === 'Password change required') {
    setStatus('Offline');  // the dialog that asks for it is open; the new session connects
  } else if (event.code === 1008) {
    logout('Your session has expired. Please log in again.');
  } else if (event.code === SESSION_ENDED && state.changingPassword) {
    state.awaitingSession = true;  // the answer's new session reconnects (carryConnectionOver)
    setStatus('Reconnecting…');
  } else if (event.code === SESSION_ENDED) {  // a new connection would be refused too
    logout('Your session has ended. Please log in again.');
  } else {
    reconnectLater();
  }
}

// The page's socket is gone: the room it was in is rejoined with `since`.
function forgetSocket() {
  state.socket = null;
  state.rejoinRoomId = state.joinedRoomId;
  state.joinedRoomId = null;
  setConnected(false);
}

// A new connection now, with the page's new token; the old one (if still
// open) is let go first, so that its close is not taken for a drop.
export function reconnectNow() {
  const old = state.socket;
  state.awaitingSession = false;
  if (old) {
    forgetSocket();
    old.close(1000);
  }
  connect();
}

function reconnectLater() {
  setStatus('Offline');
  showError(`Connection lost. Reconnecting in ${Math.round(state.retryDelay / 100) / 10} s…`);
  setTimeout(() => { if (state.token) connect(); }, state.retryDelay);
  state.retryDelay = Math.min(state.retryDelay * 2, 10000);
}

function onFrame(frame) {
  if (!frame.success) return onRefused(frame);
  const data = frame.data;
  if (data.status === 'connected') return onAuthenticated();
  if (Object.hasOwn(FRAMES, data.type)) FRAMES[data.type](data);  // others (room_left, pong) change nothing here
}

function onRefused(frame) {
  if (onPostRefused(frame)) return;  // muted, slow mode, only moderators post
  if (frame.error === 'Invalid reply') return onReplyRefused();
  if (frame.error === 'Password change required') askForNewPassword();
  else if (frame.error === 'Room not found') onRoomGone('That room no longer exists.');
  else if (frame.message === 'Failed to save message') showError('Your message could not be saved. Please send it again.');
  else showError(frame.error);
}

function onAuthenticated() {
  if (state.authenticated) return;  // a renewed token accepted: same connection, same room
  state.authenticated = true;
  setStatus('Connected');
  showError('');
  state.retryDelay = 500;
  if (state.connectedBefore) {  // back after a drop: counts moved, reports came meanwhile
    refreshRoomsSoon();
    loadOpenReports();
  }
  state.connectedBefore = true;
  if (!state.roomId) return;
  const join = {type: 'join_room', room_id: state.roomId};
  // Back after a drop in the same room: ask only for what we missed.
  const lastId = state.lastIdByRoom[state.roomId];
  if (state.rejoinRoomId === state.roomId && lastId) join.since = lastId;
  send(join);
}

// The frames the server sends, by their `type`, and who acts on each.
const FRAMES = {
  room_joined: onRoomJoined,
  user_joined: onUserJoined,
  user_left: onUserLeft,
  member_updated: onMemberUpdated,
  user_typing: showTyping,
  message_sent: onMessageSent,  // our own message, confirmed: shown like anyone's
  message_received: onMessageFrame,
  message_updated: onMessageFrame,
  message_deleted: onMessageFrame,
  reactions: onMessageFrame,
  message_pinned: onMessageFrame,
  message_unpinned: onMessageFrame,
  user_updated: onUserUpdated,  // a display name or status, of someone who shares a room with us
  room_removed: onRemovedFromRoom,
  read_marker: onReadMarker,
  room_activity: onRoomActivity,
  mention: onMention,
  report: (data) => onReport(data.report),
  room_created: onRoomListChanged,
  room_added: onRoomListChanged,
  room_updated: onRoomListChanged,
  room_deleted: onRoomListChanged,
};
