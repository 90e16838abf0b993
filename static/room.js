// The room this page is in: joining it (room_joined: the history, or after
// a drop only what was missed), leaving it, losing it (deleted, or removed
// from it), and its header: its name and description, "Leave", and the
// buttons that work only while connected and in it. permissionsChanged
// redraws what the rights it gives us show. The list of rooms is rooms.js's;
// the conversation messages.js's; the members members.js's; the header's
// "Settings" menu room_settings.js's; whether we may post posting.js's.

import {state, currentRoom, moderating, owning} from './state.js';
import {$, showError, showPane} from './dom.js';
import {api} from './api.js';
import {send} from './socket.js';
import {refreshRooms, refreshRoomsSoon, renderRooms, roomName} from './rooms.js';
import {addNotice, loadHistory, renderConversation} from './messages.js';
import {refreshMembers, renderMembers, showAddMember, showAddMemberForm, mayAddMembers} from './members.js';
import {resendUnsent} from './composer.js';
import {showRoomSettings} from './room_settings.js';
import {renderPosting} from './posting.js';
import {showReportsButton} from './reports.js';

export function joinRoom(roomId) {
  showError('');
  showPane('conversation');
  if (roomId === state.joinedRoomId) return;
  state.roomId = roomId;
  sessionStorage.setItem('swiftchat.room', roomId);
  send({type: 'join_room', room_id: roomId});
}

// room_joined: a fresh join loads history; a rejoin that recovered keeps
// what is on screen, and the missed messages follow as replayed frames.
export async function onRoomJoined(data) {
  const rejoined = data.room_id === state.joinedRoomId || data.recovered !== undefined;
  if (data.room_id !== state.joinedRoomId) {  // what was shown of the room before is not this room's
    showAddMemberForm(false);
    state.members = [];
    state.memberMenu = null;
  }
  state.joinedRoomId = data.room_id;
  setConnected(true);
  renderRooms();
  if (!currentRoom()) refreshRoomsSoon();  // opened from a search result, say, before it was listed
  refreshMembers();
  $('message-input').focus();
  if (!(rejoined && data.recovered)) await loadHistory(data.room_id);
  resendUnsent(data.room_id);
}

// The room was deleted, or we were removed from it: its conversation goes,
// and a notice (parts as for addNotice) says why.
export function onRoomGone(...notice) {
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
export function onRemovedFromRoom(data) {
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

// Writing, sending and leaving need a room and a connection to it.
export function setConnected(connected) {
  const inRoom = connected && Boolean(state.joinedRoomId);
  $('message-input').disabled = !inRoom;
  $('send-button').disabled = !inRoom;
  $('attach-button').disabled = !inRoom;
  $('leave-room').disabled = !inRoom;
  $('show-members').disabled = !state.joinedRoomId;
  renderPosting();  // and "Send" waits for slow mode
}

export function renderRoomHeader() {
  const room = currentRoom();
  const direct = Boolean(room && room.kind === 'direct');
  $('room-title').textContent = room ? roomName(room) : 'Pick a room to start chatting';
  $('room-title').title = room ? roomName(room) : '';
  $('room-about').textContent = room ? room.description : '';
  $('room-about').title = room ? room.description : '';
  // A direct room cannot be left, described or deleted, by anyone (the server answers 403).
  $('leave-room').hidden = direct;
  permissionsChanged();
}

// The room list and the role arrive after the conversation may be on
// screen; what they allow is redrawn only when it changes.
export function permissionsChanged() {
  showAddMember(mayAddMembers());
  showRoomSettings();
  renderPosting();
  const direct = currentRoom()?.kind === 'direct';
  const moderatingChanged = moderating() !== state.moderating;
  if (!moderatingChanged && direct === state.inDirectRoom && owning() === state.owning) return;
  state.inDirectRoom = direct;
  state.owning = owning();
  if (moderatingChanged) {
    state.moderating = !state.moderating;
    renderConversation();
    showReportsButton();
  }
  renderMembers();  // what each member's menu offers
}

// -- wiring -----------------------------------------------------------------

$('leave-room').addEventListener('click', leaveRoom);
$('back-to-rooms').addEventListener('click', () => showPane('rooms'));
$('show-members').addEventListener('click', () => showPane('members'));
$('back-to-conversation').addEventListener('click', () => showPane('conversation'));
