// Blocking, the blocker's own choice: the server stops the blocked user
// from opening a direct room with them or mentioning them, and this page
// hides the blocked user's messages behind "Blocked message - show", one at
// a time (their typing and notifications are dropped where those are
// handled: composer.js, reading.js). This module reads who is blocked
// before the connection opens, and does "Block" and "Unblock"; they are
// items of a member's actions menu (member_menu.js), and the hidden
// messages are messages.js's to draw.

import {state} from './state.js';
import {showError} from './dom.js';
import {api} from './api.js';
import {connect} from './socket.js';
import {redrawMessage, renderConversation} from './messages.js';
import {renderMembers} from './members.js';
import {focusActionsButton} from './member_menu.js';

// Known before any message is drawn, so that a blocked user's words never
// show, not even for a moment; then the connection (and the room's history).
export async function loadBlockedThenConnect() {
  try {
    const {users} = await api('GET', '/users/me/blocked');
    state.blocked = new Map(users.map((user) => [user.id, user]));
  } catch (error) {
    // Nobody is hidden; the page is usable all the same (a 401 has signed it out).
  }
  if (state.token) connect();
}

export function hiddenAsBlocked(item) {
  return state.blocked.has(item.user_id) && !state.revealed.has(item.id);
}

export function showBlockedMessage(id) {
  state.revealed.add(id);
  redrawMessage(id);
}

// Blocking hides again what was shown of theirs; either way the
// conversation is drawn again, and the keyboard stays on the member's actions.
export async function setBlocked(userId, blocked) {
  showError('');
  try {
    const {user} = await api(blocked ? 'POST' : 'DELETE', `/users/${encodeURIComponent(userId)}/block`);
    if (blocked) {
      state.blocked.set(userId, user);
      forgetRevealed(userId);
    } else {
      state.blocked.delete(userId);
    }
  } catch (error) {
    return showError(error.message);
  }
  renderConversation();
  renderMembers();
  focusActionsButton(userId);
}

function forgetRevealed(userId) {
  for (const item of state.items) if (item.user_id === userId) state.revealed.delete(item.id);
}
