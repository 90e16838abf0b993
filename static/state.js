// The page's state, in one object: who is signed in, the rooms, the room we
// are in, what the conversation shows, who is blocked, what waits to be sent,
// and the names people chose.
// Every module reads and changes it here; none keeps a copy of its own. It
// draws nothing and asks the server nothing (the parts of the screen do), and
// it answers only the questions that need nothing but itself: which room we
// are in (currentRoom), a member's role and mute there (roleOf, mutedUntil),
// and what our own role lets us do (moderating, pinning, owning).

export const state = {
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
  unsent: [],          // {client_id, content, room_id, attachments} sent but not yet confirmed: resent after a reconnect
  attached: [],        // files for the next message: {file, name, size, loaded, started, upload (the answer), controller}
  dropTimer: null,     // ends the conversation's "drop here" look once a drag of files has left it
  typing: new Map(),   // user_id -> {username, heardAt, until}
  lastTypingSent: 0,
  refreshTimer: null,
  role: 'user',        // from GET /users/me: 'user' or 'admin'
  moderating: false,   // may delete anyone's message here and remove members (see moderating())
  owning: false,       // may also make moderators, describe and delete the room (see owning())
  inDirectRoom: false, // the room here is a direct room: no "Message" and no moderating there
  memberMenu: null,    // {userId, index}: the member actions menu that is open, and its focused item
  muting: null,        // the user id the Mute dialog is about
  nextPostAt: {},      // room id -> when slow mode lets us post there again (ms since 1970)
  postingTimer: null,  // redraws the composer when a slow-mode wait ends
  muteEndTimer: null,  // redraws the member list (and the composer) when a mute ends
  editing: null,       // {id, draft, error}: the message being edited on this page
  replyingTo: null,    // the id of the message the composer's next message answers (composer.js)
  picking: null,       // the id of the message whose reaction picker is open (reactions.js)
  names: new Map(),    // user id -> {username, display_name}, as the server last told us (names.js)
  confirmingDelete: null, // the id of the message whose "Delete" waits for "Confirm delete"
  users: [],           // the Admin view's accounts
  settingPasswordFor: null, // the user id whose "Set password" form is open there
  roomsAsked: 0,       // GET /rooms refreshes started: only the newest one's answer is drawn
  roomsInFlight: 0,    // the refresh on its way, if any (its number)
  roomsTimer: null,    // a refresh of the room list, soon (refreshRoomsSoon)
  readTimer: null,     // a mark_read, soon (readSoon)
  connectedBefore: false, // this page has had a connection: a new one may have missed activity
  jumpTo: null,        // {roomId, messageId}: a search result to show when its room's history loads
  search: null,        // {query, results, more}: the search results shown
  notify: localStorage.getItem('swiftchat.notify') === 'on',  // turned on with "Enable notifications"
  notified: new Set(), // message ids already notified (a mention may also be a direct message)
  blocked: new Map(),  // user id -> user: their messages wait behind "Blocked message - show"
  revealed: new Set(), // ids of blocked users' messages shown all the same
  reporting: null,     // the id of the message the report dialog is about
  openReports: [],     // reports waiting for us as a moderator, newest first ("Reports" counts them)
  listedReports: [],   // what the Reports view lists when it shows other than open ones
  reportsHeard: null,  // reports told live while GET /reports is on its way
  changingPassword: false, // POST /auth/password is on its way: a 4001 meanwhile is its doing
  awaitingSession: false,  // our socket was closed by that change; its answer brings the new session
};

// Signed out: the session and everything of the user's goes, from the page
// and from sessionStorage. The token first, so that the socket's close,
// which follows, is not taken for a drop to reconnect after.
export function forgetSession() {
  state.token = null;
  sessionStorage.clear();
  Object.assign(state, {user: null, roomId: null, joinedRoomId: null, socket: null, items: [], unsent: [],
                        awaitingSession: false, blocked: new Map(), revealed: new Set(),
                        openReports: [], listedReports: [], reportsHeard: null, reporting: null,
                        role: 'user', moderating: false, owning: false, inDirectRoom: false, editing: null,
                        replyingTo: null, picking: null, names: new Map(),
                        memberMenu: null, muting: null, nextPostAt: {},
                        confirmingDelete: null, users: [], rooms: [], connectedBefore: false, jumpTo: null});
  state.roomsAsked += 1;  // a refresh still on its way is for the user who left
}

export function currentRoom() {
  return state.rooms.find((r) => r.id === state.joinedRoomId);
}

// A member's role in the room here: the server's `role` ("owner",
// "moderator" or "member"); from a server without roles, its creator is
// the owner.
export function roleOf(member) {
  return member.role || (member.id === currentRoom()?.creator_id ? 'owner' : 'member');
}

// Our own role here: as the member list says, else as the room says (a
// private room's creator keeps the creator's rights after leaving it).
function ourRole() {
  const us = state.members.find((member) => member.id === state.user?.id);
  if (us) return roleOf(us);
  const room = currentRoom();
  return room && room.creator_id === state.user?.id ? 'owner' : 'member';
}

// The room's moderators, its owner and admins may delete anyone's message,
// remove, ban and mute members, and post where only moderators may. Not in
// a direct room: neither of its two is in charge of the other (and admins
// do not see it at all).
export function moderating() {
  if (currentRoom()?.kind === 'direct') return false;
  return state.role === 'admin' || ourRole() !== 'member';
}

// Pinning a message: those who moderate the room, and in a direct room either of its two.
export function pinning() {
  return currentRoom()?.kind === 'direct' || moderating();
}

// The owner and admins also make moderators, describe and delete the room.
export function owning() {
  if (currentRoom()?.kind === 'direct') return false;
  return state.role === 'admin' || ourRole() === 'owner';
}

// Until when a member is muted here, or null if they are not (a time gone by is no mute).
export function mutedUntil(member) {
  const until = member.muted_until ? Date.parse(member.muted_until) : NaN;
  return until > Date.now() ? new Date(until) : null;
}
