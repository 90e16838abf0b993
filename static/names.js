// The names people go by. Each user has a username, which they sign in
// with and which @mentions use, and a display name of their choosing
// ("Ana K."; the username until they choose one). The page shows the
// display name on messages, quotes, reactions and the typing line, with
// the username on hover (title) and in what a screen reader says. The
// server puts both on every user object (a message's sender in history,
// the room's members, the login's user); this keeps the newest it told us,
// by user id, and follows user_updated, which the server sends to everyone
// who shares a room with someone who changed their name or status. The
// member list and the top bar are other modules': they hear of a change
// through the document's "swiftchat:user-updated" event.

import {state} from './state.js';
import {isolated} from './dom.js';
import {api} from './api.js';
import {redrawMessagesOf} from './messages.js';
import {renderTyping, renderReply} from './composer.js';

// A user object from the server (a message's sender, say); one without a
// display name (a server before 1.3) teaches nothing.
export function learnUser(user) {
  if (!user?.id || !user.display_name) return;
  state.names.set(user.id, {username: user.username, display_name: user.display_name});
}

// The names of a room's members, read with its history (messages.js), so
// that no message is drawn before its author's name is known: the member
// list (members.js) is read at the same time, and may come after the first
// live message. Without it, names fall back to usernames.
export async function learnMembersOf(roomId) {
  try {
    const {members} = await api('GET', `/rooms/${encodeURIComponent(roomId)}/members`);
    members.forEach(learnUser);
  } catch (error) {
    // The member list reads the same and says what went wrong.
  }
}

// What we know of a user: a user_updated or a sender we heard, else the member list.
function known(userId) {
  return state.names.get(userId) || state.members.find((member) => member.id === userId);
}

// The name to show for a user; `username` is what the message or frame
// itself says, for someone we know nothing more of.
export function displayName(userId, username) {
  const user = known(userId);
  return user?.display_name || user?.username || username || 'someone';
}

function usernameOf(userId, username) {
  return known(userId)?.username || username || '';
}

// Who a user is, as a screen reader says it: "Ana K. (ana)", or just "ana"
// while the two are the same.
export function spokenName(userId, username) {
  const shown = displayName(userId, username);
  const signIn = usernameOf(userId, username);
  return signIn && signIn !== shown ? `${shown} (${signIn})` : shown;
}

// An author's name on the page: the display name in its own bidi isolate,
// the username on hover.
export function authorElement(userId, username) {
  const name = isolated(displayName(userId, username), 'author');
  name.title = usernameOf(userId, username);
  return name;
}

// user_updated: what shows their name is drawn again, and the other parts
// of the screen are told.
export function onUserUpdated(data) {
  learnUser(data.user);
  redrawMessagesOf(data.user.id);
  renderTyping();
  renderReply();
  document.dispatchEvent(new CustomEvent('swiftchat:user-updated', {detail: data.user}));
}
