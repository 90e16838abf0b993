// The Rooms pane: the rooms (under "Rooms") and direct rooms (under "Direct
// messages") this user may enter, each with its unread and mention badges;
// the unread count in the tab's title; the "New room" form; and the list
// kept up live (room_created, room_added, room_updated, room_deleted).
// Entering, leaving and losing a room are room.js's; what counts as read
// is reading.js's.

import {state, currentRoom} from './state.js';
import {$, element, isolated, isolatedString, showError} from './dom.js';
import {api} from './api.js';
import {joinRoom, renderRoomHeader, onRoomGone} from './room.js';
import {readSoon} from './reading.js';
import {showReportsButton} from './reports.js';

const ROOMS_REFRESH_MS = 300;       // room_activity from many rooms: one GET /rooms for them all

// Of overlapping refreshes (activity in several rooms at once), only the
// one started last is drawn: an older answer may know less.
export async function refreshRooms() {
  const asked = ++state.roomsAsked;
  let rooms;
  state.roomsInFlight = asked;
  try {
    rooms = await allRooms();
  } catch (error) {
    showError(error.message);
    return;
  } finally {
    if (state.roomsInFlight === asked) state.roomsInFlight = 0;
  }
  if (asked !== state.roomsAsked || !state.token) return;
  state.rooms = rooms;
  renderRooms();
  if (currentRoom()?.unread_count) readSoon();  // counted before we had read what is on screen
}

// GET /rooms answers at most 100 at a time: read them all, so that every
// room can be reached and the tab's title counts the unread of them all.
async function allRooms() {
  const rooms = [];
  for (;;) {
    const page = await api('GET', `/rooms?limit=100&offset=${rooms.length}`);
    rooms.push(...page.rooms);
    if (page.rooms.length === 0 || rooms.length >= page.total) return rooms;
  }
}

// room_activity and mentions come at most once a second per room, but from
// any number of rooms: one refresh serves all that arrive meanwhile.
export function refreshRoomsSoon() {
  if (state.roomsTimer) return;
  state.roomsTimer = setTimeout(() => {
    state.roomsTimer = null;
    refreshRooms();
  }, ROOMS_REFRESH_MS);
}

// Rooms under "Rooms", direct rooms under "Direct messages". A keyboard
// user on a room's button stays on it: the list is redrawn whenever a
// count changes, which in a busy class is often.
export function renderRooms() {
  const rooms = state.rooms.filter((room) => room.kind !== 'direct');
  const direct = state.rooms.filter((room) => room.kind === 'direct');
  const focused = document.activeElement?.closest('#room-list button, #direct-list button')?.dataset.roomId;
  $('no-rooms').hidden = rooms.length > 0;
  $('room-list').replaceChildren(...rooms.map(roomItem));
  $('no-direct').hidden = direct.length > 0;
  $('direct-list').replaceChildren(...direct.map(roomItem));
  if (focused) document.querySelector(`#rooms-panel button[data-room-id="${CSS.escape(focused)}"]`)?.focus();
  renderRoomHeader();
  showUnreadInTitle();
  showReportsButton();  // a room of our own makes us its moderator
}

function roomItem(room) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.roomId = room.id;
  button.setAttribute('aria-current', String(room.id === state.joinedRoomId));
  button.classList.toggle('unread', room.unread_count > 0);
  const name = roomName(room);
  button.append(isolated(name, 'room-name'), ...unreadBadges(room));
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
export function roomName(room) {
  if (room.kind !== 'direct') return room.name;
  const name = room.name.toLowerCase(), me = state.user.username.toLowerCase();
  if (name.startsWith(`${me} & `)) return room.name.slice(me.length + 3);
  if (name.endsWith(` & ${me}`)) return room.name.slice(0, -(me.length + 3));
  return room.name;
}

// A room new to this user's list: created (by us, or by anyone if public),
// a direct room opened by either of its two, or a private room we were added to.
export function addRoom(room) {
  if (!state.rooms.some((r) => r.id === room.id)) state.rooms.push(room);
  renderRooms();
}

export function onRoomListChanged(data) {
  const {type, ...listed} = data;
  if (state.roomsInFlight) {
    // A refresh asked before this change would undo it when it answers
    // (a direct room just opened would vanish): drop it, and ask again.
    state.roomsAsked += 1;
    refreshRoomsSoon();
  }
  if (type === 'room_created' || type === 'room_added') return addRoom(listed);
  if (type === 'room_updated') {  // its description, who may post, slow mode: whatever the frame says
    const {room_id: roomId, ...changes} = listed;
    const room = state.rooms.find((r) => r.id === roomId);
    if (room) Object.assign(room, changes);
  } else {
    state.rooms = state.rooms.filter((r) => r.id !== data.room_id);
    if (data.room_id === state.joinedRoomId || data.room_id === state.roomId) {
      onRoomGone('This room was deleted by its creator.');
    }
  }
  renderRooms();
}

// The server counts, for each room we are a member of, the messages of
// others since our read marker, and the mentions of us among them.
// Screen readers say the badges as "3 unread" and "1 mentions" (one
// pattern each, whatever the number, so that they are easy to listen for).
function unreadBadges(room) {
  const badges = [];
  if (room.unread_count > 0) badges.push(badge(`${room.unread_count} unread`, String(room.unread_count), 'unread'));
  if (room.mention_count > 0) badges.push(badge(`${room.mention_count} mentions`, `@${room.mention_count}`, 'mentions'));
  return badges;
}

function badge(name, shown, className) {
  const span = element('span', shown);
  span.className = `badge ${className}`;
  span.setAttribute('role', 'img');  // a named image, as the online dot is: the name is what is read
  span.setAttribute('aria-label', name);
  span.title = name;
  return span;
}

function showUnreadInTitle() {
  const unread = state.rooms.reduce((total, room) => total + (room.unread_count || 0), 0);
  document.title = unread > 0 ? `(${unread}) SwiftChat` : 'SwiftChat';
}

// -- wiring -----------------------------------------------------------------

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
