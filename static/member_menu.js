// A member's actions, in one menu per member of the Members pane: the
// "Actions for ana" button opens it, and its items are what this viewer
// may do to that member: "Message" (not in a direct room); "Remove",
// "Ban" and "Mute" or "Unmute" (the room's moderators on plain members,
// its owner on all but itself, admins on anyone); "Make moderator" or
// "Make member" (its owner and admins); and "Block" or "Unblock" (anyone).
// The server checks every right; the menu only leaves out what would be
// refused. (Member objects do not say who is an admin: an action on one
// by the owner is offered, and refused.) It follows the WAI-ARIA menu
// button pattern: Enter, Space or an arrow key opens it; the arrows, Home
// and End move in it; Escape, Tab or a click elsewhere closes it, and the
// keyboard goes back to its button. The list is drawn again often
// (presence, joins), so which menu is open, and on which item, is kept in
// state and drawn with the list (members.js). What an item does belongs to
// the module that owns it: members.js, moderation.js, blocking.js.

import {state, moderating, owning, roleOf, mutedUntil} from './state.js';
import {$, element, isolatedString} from './dom.js';
import {openDirect, renderMembers, shownName} from './members.js';
import {removeMember, askToMute, unmute, setMemberRole} from './moderation.js';
import {setBlocked} from './blocking.js';

// [the item's name, what it does with the member's user id], as this viewer may.
function itemsFor(member) {
  const items = [];
  const role = roleOf(member);
  if (!state.inDirectRoom) items.push(['Message', openDirect]);  // in a direct room it would lead back here
  if (mayModerate(role)) {
    items.push(['Remove', (id) => removeMember(id, false)], ['Ban', (id) => removeMember(id, true)],
               mutedUntil(member) ? ['Unmute', unmute] : ['Mute', askToMute]);
  }
  if (owning() && role !== 'owner') {
    items.push(role === 'moderator' ? ['Make member', (id) => setMemberRole(id, 'member')]
                                    : ['Make moderator', (id) => setMemberRole(id, 'moderator')]);
  }
  const blocked = state.blocked.has(member.id);
  items.push(blocked ? ['Unblock', (id) => setBlocked(id, false)] : ['Block', (id) => setBlocked(id, true)]);
  return items;
}

// Whether we may remove, ban and mute a member of this role here.
function mayModerate(role) {
  if (state.role === 'admin') return !state.inDirectRoom;
  if (role === 'owner' || !moderating()) return false;
  return owning() || role === 'member';  // a moderator acts on plain members only
}

// The button, and below it the menu while it is open. nameId is the id of
// the element that shows the member's name, which names the button too.
export function memberActions(member, nameId) {
  const open = state.memberMenu?.userId === member.id;
  const button = element('button', '⋯');
  button.type = 'button';
  button.id = `actions-${nameId}`;
  button.className = 'actions';
  button.dataset.control = 'actions';
  button.setAttribute('aria-labelledby', `actions-for ${nameId}`);
  button.setAttribute('aria-haspopup', 'menu');
  button.setAttribute('aria-expanded', String(open));
  button.title = `Actions for ${isolatedString(shownName(member))}`;
  if (!open) return [button];
  const menu = element('div', ...itemsFor(member).map(([name], index) => menuItem(name, index)));
  menu.className = 'member-menu';
  menu.setAttribute('role', 'menu');
  menu.setAttribute('aria-labelledby', `actions-for ${nameId}`);  // not the button: a name is not taken twice removed
  button.setAttribute('aria-controls', menu.id = `menu-${nameId}`);
  return [button, menu];
}

function menuItem(name, index) {
  const item = element('button', name);
  item.type = 'button';
  item.setAttribute('role', 'menuitem');
  item.tabIndex = -1;  // the arrows move between items; Tab leaves the menu
  item.dataset.index = index;
  return item;
}

function openMenu(userId, index) {
  state.memberMenu = {userId, index};
  renderMembers();
  focusMenuItem();
}

// The open menu's current item; -1 is its last.
export function focusMenuItem() {
  const items = [...$('member-list').querySelectorAll('[role=menuitem]')];
  if (!items.length) return;
  const index = (state.memberMenu.index + items.length) % items.length;
  state.memberMenu.index = index;
  items[index].focus();
}

export function closeMenu(focusButton) {
  const userId = state.memberMenu?.userId;
  if (userId == null) return;
  state.memberMenu = null;
  const row = rowOf(userId);
  row?.querySelector('.member-menu')?.remove();
  const button = row?.querySelector('[data-control=actions]');
  button?.setAttribute('aria-expanded', 'false');
  button?.removeAttribute('aria-controls');
  if (focusButton) button?.focus();
}

export function focusActionsButton(userId) {
  rowOf(userId)?.querySelector('[data-control=actions]')?.focus();
}

function rowOf(userId) {
  return $('member-list').querySelector(`li[data-user-id="${CSS.escape(userId)}"]`);
}

// An item chosen: the menu closes, the keyboard is back on its button, and the item acts.
function choose(userId, index) {
  const member = state.members.find((m) => m.id === userId);
  const chosen = member && itemsFor(member)[index];
  closeMenu(true);
  if (chosen) chosen[1](userId);
}

// Keys on a member's actions button (Enter and Space click it).
function onButtonKey(event, userId) {
  if (event.key === 'ArrowDown') openMenu(userId, 0);
  else if (event.key === 'ArrowUp') openMenu(userId, -1);
  else return;
  event.preventDefault();
}

const MOVES = {ArrowDown: (i) => i + 1, ArrowUp: (i) => i - 1, Home: () => 0, End: () => -1};

function onMenuKey(event) {
  if (event.key === 'Escape') {
    event.preventDefault();
    closeMenu(true);
  } else if (event.key === 'Tab') {
    closeMenu(true);  // and Tab goes on from the button, to whatever follows it
  } else if (MOVES[event.key]) {
    event.preventDefault();
    state.memberMenu.index = MOVES[event.key](state.memberMenu.index);
    focusMenuItem();
  }
}

// -- wiring -----------------------------------------------------------------

$('member-list').addEventListener('click', (event) => {
  const target = event.target.closest('button');
  const userId = target?.closest('li[data-user-id]')?.dataset.userId;
  if (!userId) return;
  if (target.getAttribute('role') === 'menuitem') choose(userId, Number(target.dataset.index));
  else if (target.dataset.control !== 'actions') return;
  else if (state.memberMenu?.userId === userId) closeMenu(true);
  else openMenu(userId, 0);
});
$('member-list').addEventListener('keydown', (event) => {
  const userId = event.target.closest('li[data-user-id]')?.dataset.userId;
  if (!userId) return;
  if (event.target.getAttribute('role') === 'menuitem') onMenuKey(event);
  else if (event.target.dataset.control === 'actions') onButtonKey(event, userId);
});
// A click anywhere but in the open menu or on its button closes it.
document.addEventListener('pointerdown', (event) => {
  if (!state.memberMenu) return;
  const row = event.target.closest?.('#member-list li[data-user-id]');
  const inside = row?.dataset.userId === state.memberMenu.userId
    && event.target.closest('.member-menu, [data-control=actions]');
  if (!inside) closeMenu(false);
});
