// The Members pane: who is in the room here, online first, each by their
// display name (the username on hover and in the accessible name, since
// mentions are @username) with their status line, "here" for those in
// it now, each one's role in the room ("owner", "moderator") and
// whether they are muted, and beside each other member one menu of their
// actions (member_menu.js), of which "Message" (the direct room of the two
// of us) is this module's. Also "Add member" for a private room's creator
// or an admin, the room's notices that someone joined or left, and
// member_updated (a new role, a mute), and a member's new name or status
// (user_updated, handed on by socket.js as a `swiftchat:user-updated`
// event). Which room is here is room.js's;
// the member count in the room list is rooms.js's, kept up from here.

import {state, currentRoom, roleOf, mutedUntil} from './state.js';
import {$, element, isolated, isolatedString, showError} from './dom.js';
import {api} from './api.js';
import {addRoom, renderRooms} from './rooms.js';
import {joinRoom, permissionsChanged} from './room.js';
import {addNotice} from './messages.js';
import {clearTyping} from './composer.js';
import {memberActions, focusMenuItem} from './member_menu.js';
import {shortTime} from './format.js';

export async function refreshMembers() {
  const roomId = state.joinedRoomId;
  if (!roomId) return;
  try {
    const members = (await api('GET', `/rooms/${encodeURIComponent(roomId)}/members`)).members;
    countMembers(roomId, members.length);
    if (roomId !== state.joinedRoomId) return;  // another room's list is on screen by now
    state.members = members;
  } catch (error) {
    showError(error.message);
  }
  renderMembers();
  permissionsChanged();  // our own role and mute are in the list
}

// member_updated: a member of the room here has a new role, or a mute
// began or ended. Ours changes what we may do, and whether we may post.
export function onMemberUpdated(data) {
  if (data.room_id !== state.joinedRoomId) return;
  applyMember(data.member);
}

// A member as the server now has them (a frame, or the answer to our own
// change); the fields it leaves out (presence) stay as they were.
export function applyMember(member) {
  state.members = state.members.map((listed) => (listed.id === member.id ? {...listed, ...member} : listed));
  renderMembers();
  permissionsChanged();
}

// user_updated: someone's display name or status line changed (ours too: profile.js).
export function onUserUpdated(user) {
  if (!state.members.some((member) => member.id === user.id)) return;
  const named = {display_name: user.display_name, status: user.status};
  state.members = state.members.map((member) => (member.id === user.id ? {...member, ...named} : member));
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

// Drawn again whenever anything changes; a keyboard user on a member's
// actions button, or in its open menu, stays there.
export function renderMembers() {
  $('no-members').hidden = Boolean(state.joinedRoomId);
  const focused = document.activeElement?.closest('#member-list li[data-user-id]')?.dataset.userId;
  const inMenu = Boolean(document.activeElement?.closest('.member-menu'));
  // Online first, then by name.
  const members = [...state.members].sort((a, b) =>
    (b.is_online - a.is_online) || shownName(a).localeCompare(shownName(b)));
  $('member-list').replaceChildren(...members.map(memberRow));
  if (state.memberMenu && !members.some((member) => member.id === state.memberMenu.userId)) {
    state.memberMenu = null;  // they left the room
  }
  if (inMenu && state.memberMenu) focusMenuItem();
  else if (focused) $('member-list').querySelector(`li[data-user-id="${CSS.escape(focused)}"] button`)?.focus();
  scheduleMuteEnds(members);
}

function memberRow(member, index) {
  const li = document.createElement('li');
  li.className = 'member' + (member.is_online ? '' : ' offline');
  li.dataset.userId = member.id;
  const dot = document.createElement('span');
  dot.className = 'dot' + (member.is_online ? ' online' : '');
  dot.setAttribute('aria-label', member.is_online ? 'online' : 'offline');
  dot.setAttribute('role', 'img');
  const name = memberName(member);
  name.id = `member-${index}`;
  li.append(dot, name);
  if (member.id !== state.user.id) li.append(...memberActions(member, name.id));
  // Under the name, quietly: here, the role, a mute, and the status line they chose.
  const details = badges(member);
  if (member.status) details.push(isolated(member.status, 'status-line'));
  if (details.length) {
    const line = element('span', ...details);
    line.className = 'details';
    li.append(line);
  }
  return li;
}

// A member before 1.3 (or a frame that leaves it out) has no display name: the username is the name then.
export function shownName(member) {
  return member.display_name || member.username;
}

// "Ana K.", and for a screen reader (and in "Actions for ...", which it
// names) "Ana K. (student17)": the username, which mentions use.
function memberName(member) {
  const name = element('span', isolated(shownName(member)));
  name.className = 'name';
  name.title = member.username;
  if (shownName(member) !== member.username) {
    const username = element('span', ' (', isolated(member.username), ')');
    username.className = 'visually-hidden';
    name.append(username);
  }
  return name;
}

// "here" while in the room now; "owner" or "moderator"; "muted until 10:45".
function badges(member) {
  const shown = [];
  if (member.in_room) shown.push(tag('here', 'here', 'in this room now'));
  const role = roleOf(member);
  if (role !== 'member') shown.push(tag(role, `role ${role}`, `the room's ${role}`));
  const until = mutedUntil(member);
  if (until) shown.push(tag(`muted until ${shortTime(until)}`, 'muted', `muted until ${until.toLocaleString()}`));
  return shown;
}

function tag(text, className, title) {
  const span = element('span', text);
  span.className = `tag ${className}`;
  span.title = title;
  return span;
}

// A mute's end changes the list (and, for our own, the composer): drawn again then.
function scheduleMuteEnds(members) {
  clearTimeout(state.muteEndTimer);
  const ends = members.map(mutedUntil).filter(Boolean).map((until) => until.getTime());
  if (!ends.length) return;
  state.muteEndTimer = setTimeout(() => {
    renderMembers();
    permissionsChanged();
  }, Math.min(...ends) - Date.now() + 500);
}

// -- private rooms and direct messages ------------------------------------------

// "Message": the direct room of the two of us, the same one each time from
// either side. Both our connections hear room_created the first time; the
// answer is here first, so the room is listed before we join it.
export async function openDirect(userId) {
  showError('');
  try {
    const room = await api('POST', '/direct', {user_id: userId});
    addRoom({...room, member_count: 2});
    joinRoom(room.id);
  } catch (error) {
    showError(error.message);
  }
}

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
    showAddMemberOutcome(form, '', `${isolatedString(shownName(member))} was added`);
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

document.addEventListener('swiftchat:user-updated', (event) => onUserUpdated(event.detail));
$('add-member').addEventListener('click', () => {
  showAddMemberForm($('add-member').getAttribute('aria-expanded') !== 'true');
});
