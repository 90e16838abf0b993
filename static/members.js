// The Members pane: who is in the room here, online first, with "here" for
// those in it now, and beside each other member their actions: "Message"
// (the direct room of the two of us), "Remove" for moderators, and "Block"
// (blocking.js decides what that hides). Also "Add member" for a private
// room's creator or an admin, and the room's notices that someone joined
// or left. Which room is here is room.js's; the member count in the room
// list is rooms.js's, kept up from here.

import {state, currentRoom, moderating} from './state.js';
import {$, controlButton, element, isolated, isolatedString, showError} from './dom.js';
import {api} from './api.js';
import {addRoom, renderRooms} from './rooms.js';
import {joinRoom} from './room.js';
import {addNotice} from './messages.js';
import {clearTyping} from './composer.js';
import {blockButton, setBlocked} from './blocking.js';

export async function refreshMembers() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    const members = (await api('GET', `/rooms/${encodeURIComponent(roomId)}/members`)).members;
    if (roomId === state.joinedRoomId) state.members = members;
    countMembers(roomId, members.length);
  } catch (error) {
    showError(error.message);
  }
  renderMembers();
}

// user_joined
export function onUserJoined(data) {
  addNotice({user: data.username}, ' joined');
  refreshMembers();  // and with it the room list's count
}

// user_left
export function onUserLeft(data) {
  clearTyping(data.user_id);
  addNotice({user: data.username}, ' left');
  refreshMembers();
}

// The room list's count is of persisted members (member_count), as the
// member list is; whatever changed the list (someone joined, left, was
// added or removed) changed the count.
function countMembers(roomId, count) {
  const room = state.rooms.find((r) => r.id === roomId);
  if (!room || room.member_count === count) return;
  room.member_count = count;
  renderRooms();
}

export function renderMembers() {
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
    const buttons = element('span');
    buttons.className = 'buttons';
    if (!state.inDirectRoom) buttons.append(messageButton(member));  // it would lead back here
    if (mayRemove) buttons.append(removeButton(member));
    buttons.append(blockButton(member));
    li.append(buttons);
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
  refreshMembers();  // and with it the room list's count
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
  block: (userId) => setBlocked(userId, true),
  unblock: (userId) => setBlocked(userId, false),
};

// Nobody joins a private room by themselves: its creator, or an admin, adds them.
export function mayAddMembers() {
  const room = currentRoom();
  return Boolean(room && room.visibility === 'private' && room.kind === 'room'
                 && (room.creator_id === state.user.id || state.role === 'admin'));
}

export function showAddMember(allowed) {
  $('add-member').hidden = !allowed;
  if (!allowed) showAddMemberForm(false);
}

// The form is a copy of its template, put in the page while open (see index.html).
export function showAddMemberForm(shown) {
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
    refreshMembers();  // and with it the room list's count
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

// -- wiring -----------------------------------------------------------------

$('member-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && MEMBER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('add-member').addEventListener('click', () => {
  showAddMemberForm($('add-member').getAttribute('aria-expanded') !== 'true');
});
