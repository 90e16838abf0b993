// Reading: what the user has read and what waits for them. The room on
// screen is marked read while the tab is visible (mark_read, and the
// server's read_marker back, which clears the badges on the user's other
// devices too); a message that arrives while the tab is hidden is counted
// unread; room_activity and mention tell of other rooms; and, once turned
// on with "Enable notifications", a mention or a direct message in a
// hidden tab is a browser notification. The badges are drawn by rooms.js;
// opening a room at a message is messages.js's.

import {state, currentRoom} from './state.js';
import {$, showError} from './dom.js';
import {api} from './api.js';
import {send} from './socket.js';
import {refreshRoomsSoon, renderRooms} from './rooms.js';
import {fromHistory, openAt} from './messages.js';
import {attachmentText} from './attachments.js';

const READ_DELAY_MS = 2000;         // mark_read at most this often: each is a write, for every reader of a busy room

// Viewing a room reads it: while the tab is visible, the room on screen is
// marked read up to its newest message, and the server tells the user's
// other devices (read_marker), whose badges then clear. At most one
// mark_read per READ_DELAY_MS: a connection may send 20 frames a second.
export function readSoon() {
  if (state.readTimer) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    markRead();
  }, READ_DELAY_MS);
}

function markRead() {
  const room = currentRoom();
  const newest = state.items.findLast((item) => item.kind === 'message' && item.id != null);
  if (!room || !newest || document.visibilityState !== 'visible' || state.pendingLive) return;
  if (newest.id <= (room.last_read_id || 0) && !room.unread_count && !room.mention_count) return;
  send({type: 'mark_read', room_id: room.id, message_id: newest.id}, true);
  const shown = room.unread_count || room.mention_count;  // the list shows counts, not markers
  Object.assign(room, {last_read_id: Math.max(newest.id, room.last_read_id || 0), unread_count: 0, mention_count: 0});
  if (shown) renderRooms();
}

// read_marker: the answer to our mark_read, or another device of ours read
// a room. It says what is still unread but not how many mentions: none if
// nothing is, else GET /rooms knows.
export function onReadMarker(data) {
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (!room) return;
  room.last_read_id = Math.max(data.last_read_id, room.last_read_id || 0);
  if (room === currentRoom() && document.visibilityState === 'visible' && data.unread_count > 0) {
    return readSoon();  // what arrived since our mark_read is on screen: read, not a badge that blinks
  }
  if (data.unread_count > 0) return refreshRoomsSoon();  // GET /rooms says how many mention us
  if (!room.unread_count && !room.mention_count) return;  // nothing shown changes
  room.unread_count = room.mention_count = 0;
  renderRooms();
}

// While the tab is hidden, a message in the room on screen is unread: the
// server counts it too, but tells this connection nothing more (room_activity
// is for connections elsewhere). A mention, or any message in a direct room,
// may also be a notification.
export function countUnseen(message) {
  const room = currentRoom();
  if (!room || message.id == null || message.user_id === state.user.id) return;
  if (message.id <= (room.last_read_id || 0)) return;
  room.unread_count = (room.unread_count || 0) + 1;
  if (mentionsMe(message)) room.mention_count = (room.mention_count || 0) + 1;
  renderRooms();
  if (mentionsMe(message) || room.kind === 'direct') notify(message);
}

function mentionsMe(message) {
  return (message.mentions || []).includes(state.user.id);
}

// room_activity: messages in a room this connection is not in. It says
// only the newest id, at most once a second, so GET /rooms does the counting.
// A direct room's message is worth a notification, which needs its words.
export function onRoomActivity(data) {
  refreshRoomsSoon();
  const room = state.rooms.find((r) => r.id === data.room_id);
  if (room && room.kind === 'direct' && notificationsOn() && document.hidden) notifyNewest(room);
}

async function notifyNewest(room) {
  try {
    const [newest] = (await api('GET', `/messages?room_id=${encodeURIComponent(room.id)}&limit=1`)).messages;
    if (newest) notify({...fromHistory(newest), room_id: room.id});
  } catch (error) {
    // Only a notification is lost; the badge still counts the message.
  }
}

// mention: someone wrote @us in a room this connection is not in.
export function onMention(data) {
  refreshRoomsSoon();
  notify(data.message);
}

function notificationsOn() {
  return state.notify && 'Notification' in window && Notification.permission === 'granted';
}

// A browser notification, only while the tab is hidden (a visible page
// shows its badges) and only once per message. Clicking it opens the room
// at that message.
function notify(message) {
  if (!notificationsOn() || !document.hidden || message.user_id === state.user.id) return;
  if (state.blocked.has(message.user_id)) return;
  if (state.notified.has(message.id)) return;
  state.notified.add(message.id);
  const room = state.rooms.find((r) => r.id === message.room_id);
  const title = room?.kind === 'direct' ? `${message.username} sent you a message`
    : `${message.username} mentioned you${room ? ` in ${room.name}` : ''}`;
  let notification;
  try {
    const body = message.content || attachmentText(message.attachments);  // a message may be files alone
    notification = new Notification(title, {body: body.slice(0, 200), tag: `swiftchat-${message.id}`});
  } catch (error) {
    return;  // some phones' browsers show notifications only from a service worker
  }
  notification.addEventListener('click', () => {
    window.focus();
    notification.close();
    openAt(message.room_id, message.id);
  });
}

// "Enable notifications" asks the browser's permission (never asked on
// load); the choice is kept for this browser, as the permission is.
async function toggleNotifications() {
  if (notificationsOn()) {
    state.notify = false;
    localStorage.removeItem('swiftchat.notify');
  } else if (await Notification.requestPermission() === 'granted') {
    state.notify = true;
    localStorage.setItem('swiftchat.notify', 'on');
  } else {
    showError('This browser is set to refuse notifications from this site; its site settings can allow them.');
  }
  showNotifyButton();
}

export function showNotifyButton() {
  $('notify').hidden = !('Notification' in window);
  $('notify').textContent = notificationsOn() ? 'Turn off notifications' : 'Enable notifications';
}

// -- wiring -----------------------------------------------------------------

$('notify').addEventListener('click', toggleNotifications);
// Back to a tab that was hidden: what arrived meanwhile is read now.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.joinedRoomId) readSoon();
});
