// The Admin view (admins only): every account, sorted by name and narrowed
// by a filter box, with its role and whether it may sign in, and for each
// "Disable" or "Enable", "Make admin" or "Make user", and "Set password".
// The server checks that the caller is an admin; whether the "Admin" button
// shows at all is session.js's (the role).

import {state} from './state.js';
import {$, controlButton, element, isolated, isolatedString} from './dom.js';
import {api} from './api.js';
import {setRole} from './session.js';

// The filter box, made here and put above the list: a class of thirty, or
// a school of nine hundred, is found by typing a few letters of a name.
const filter = element('input');
filter.type = 'search';
filter.autocomplete = 'off';
filter.spellcheck = false;
$('user-list').before(element('label', 'Filter users ', filter));

async function openAdmin() {
  state.settingPasswordFor = null;
  filter.value = '';  // another admin may have signed in on this page since
  showAdminOutcome('', '');
  $('admin-view').showModal();
  try {
    state.users = await allUsers();
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
  renderUsers();
}

// The list asked again (accounts were imported, say), drawn if the view is open.
export async function reloadUsers() {
  try {
    state.users = await allUsers();
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
  if ($('admin-view').open) renderUsers();
}

// GET /users answers at most 100 at a time.
async function allUsers() {
  const users = [];
  for (;;) {
    const page = await api('GET', `/users?limit=100&offset=${users.length}`);
    users.push(...page.users);
    if (page.users.length === 0 || users.length >= page.total) return users;
  }
}

export function showAdminOutcome(error, done) {
  $('admin-error').textContent = error;
  $('admin-error').hidden = !error;
  $('admin-status').textContent = done;
}

// Names in the order a person expects: "ana" beside "Anton", "pupil2" before "pupil10".
const BY_NAME = new Intl.Collator(undefined, {sensitivity: 'base', numeric: true});

// The users the filter lets through (by name, or display name where the
// server gives one), in the order of their names, whatever the server's.
function shownUsers() {
  const wanted = filter.value.trim().toLowerCase();
  const matches = (user) => [user.username, user.display_name || '']
    .some((name) => name.toLowerCase().includes(wanted));
  return state.users.filter(matches).sort((one, other) => BY_NAME.compare(one.username, other.username));
}

function noMatch() {
  const li = element('li', 'No user matches the filter.');
  li.className = 'empty';
  return li;
}

// A keyboard user stays on the control they used ("Disable" becomes
// "Enable" in the same place); past the row's end, its last button.
function renderUsers() {
  const active = document.activeElement;
  const row = active.closest('#user-list li');
  const place = row && [...row.querySelectorAll('button, input')].indexOf(active);
  const rows = shownUsers().map(userRow);
  if (!rows.length && state.users.length) rows.push(noMatch());
  $('user-list').replaceChildren(...rows);
  if (!row) return;
  const again = $('user-list').querySelector(`li[data-user-id="${row.dataset.userId}"]`);
  const controls = again ? again.querySelectorAll('button, input') : [];
  if (controls.length) (controls[place] || controls[controls.length - 1]).focus();
}

function userRow(user) {
  const li = document.createElement('li');
  li.className = 'user';
  li.dataset.userId = user.id;
  const about = document.createElement('span');
  about.className = 'about';
  about.textContent = [user.role, user.disabled ? 'disabled' : '',
                       user.must_change_password ? 'must change password' : '', user.id === state.user.id ? 'you' : '']
    .filter(Boolean).join(', ');
  const admin = user.role === 'admin';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(controlButton(user.disabled ? 'Enable' : 'Disable', user.disabled ? 'enable' : 'disable'),
                 controlButton(admin ? 'Make user' : 'Make admin', admin ? 'make-user' : 'make-admin'),
                 controlButton('Set password', 'set-password'));
  li.append(isolated(user.username, 'name'), about, buttons);
  if (state.settingPasswordFor === user.id) li.append(setPasswordForm());
  return li;
}

function setPasswordForm() {
  const input = document.createElement('input');
  input.type = 'password';
  input.autocomplete = 'new-password';
  input.required = true;
  const label = document.createElement('label');
  label.append('New password ', input);
  const save = controlButton('Save password', 'save-password');
  save.type = 'submit';
  const form = document.createElement('form');
  form.className = 'set-password';
  form.append(label, save, controlButton('Cancel', 'cancel-password'));
  return form;
}

function showSetPassword(userId) {
  state.settingPasswordFor = userId;
  renderUsers();
  if (userId) $('user-list').querySelector(`li[data-user-id="${userId}"] input`).focus();
}

// Disabling or a new password ends the user's sessions (their sockets close with 4001).
async function updateUser(userId, changes, done) {
  showAdminOutcome('', '');
  try {
    const {user} = await api('PATCH', `/users/${encodeURIComponent(userId)}`, changes);
    state.users = state.users.map((listed) => (listed.id === user.id ? user : listed));
    if (changes.password !== undefined) state.settingPasswordFor = null;
    renderUsers();
    showAdminOutcome('', `${isolatedString(user.username)} ${done}`);
    if (state.user && user.id === state.user.id) setRole(user.role);
  } catch (error) {
    showAdminOutcome(error.message, '');
  }
}

// What each button of a user's row does, by its data-control.
const USER_CONTROLS = {
  disable: (id) => updateUser(id, {disabled: true}, 'is disabled and signed out'),
  enable: (id) => updateUser(id, {disabled: false}, 'may sign in again'),
  'make-admin': (id) => updateUser(id, {role: 'admin'}, 'is an admin now'),
  'make-user': (id) => updateUser(id, {role: 'user'}, 'is no longer an admin'),
  'set-password': (id) => showSetPassword(id),
  'cancel-password': () => showSetPassword(null),
};

// -- wiring -----------------------------------------------------------------

$('admin').addEventListener('click', openAdmin);
filter.addEventListener('input', renderUsers);
$('close-admin').addEventListener('click', () => $('admin-view').close());
$('user-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && USER_CONTROLS[button.dataset.control];
  if (action) action(button.closest('li').dataset.userId);
});
$('user-list').addEventListener('submit', (event) => {
  event.preventDefault();  // "Save password"
  const userId = event.target.closest('li').dataset.userId;
  updateUser(userId, {password: event.target.querySelector('input').value}, 'has a new password and is signed out');
});
