// Signing in and out, and staying signed in: the login form (with
// "Register" only while the server lets anyone register), a token from
// an embedding program, the token kept in sessionStorage and renewed
// before it expires, the user's role, "Log out", and "Change password"
// (a new password is a new session), which an account whose password
// someone else chose (an import, an admin) must do before anything else
// (must_change_password: the "Choose your own password" dialog). Signed
// in, it shows the chat and asks each part of the screen to fill itself
// in; signed out, it puts the page back as it was. The connection itself
// is socket.js's; your display name and status line are profile.js's,
// and the top bar's "Menu" topbar.js's.

import {state, forgetSession} from './state.js';
import {$, showError, setStatus, showPane} from './dom.js';
import {api} from './api.js';
import {send, reconnectNow} from './socket.js';
import {refreshRooms} from './rooms.js';
import {permissionsChanged} from './room.js';
import {showAddMember} from './members.js';
import {loadBlockedThenConnect} from './blocking.js';
import {showNotifyButton} from './reading.js';
import {closeSearch} from './search.js';
import {forgetFiles} from './uploads.js';
import {loadOpenReports} from './reports.js';
import {rememberProfile, showOwnName} from './profile.js';
import {showMenuButton, focusTopBarButton} from './topbar.js';

const REFRESH_BEFORE_MS = 5 * 60 * 1000;  // a token is renewed this long before it expires

function saveSession(data) {
  const previousSession = tokenClaims(state.token).sid;
  state.token = data.token;
  // A renewed token keeps the name and status line we know; a new user's come with /users/me.
  const known = state.user?.id === data.id ? state.user : {};
  state.user = {display_name: data.username, status: '', ...known, id: data.id, username: data.username};
  sessionStorage.setItem('swiftchat.token', state.token);
  sessionStorage.setItem('swiftchat.user', JSON.stringify(state.user));
  rememberProfile(data.user || data);  // a server that sends them with the token
  scheduleRefresh();
  carryConnectionOver(previousSession);
}

// A token of the connection's own session (a refresh) is sent on it: the
// server keeps it in its room, and onAuthenticated ignores the answer. A
// token of a new session (a new password) needs a new connection, as after
// a drop: the old one's session has ended, and the server closes it.
function carryConnectionOver(previousSession) {
  if (tokenClaims(state.token).sid === previousSession) send({type: 'auth', token: state.token}, true);
  else if (state.socket || state.awaitingSession) reconnectNow();
}

// What a token says of itself (sid, exp, ...); {} for one that is not a JWT.
function tokenClaims(token) {
  try {
    return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  } catch (error) {
    return {};
  }
}

// A token lives an hour; ask for a new one a few minutes before it ends,
// so a page left open stays signed in.
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  const expires = tokenClaims(state.token).exp * 1000;
  if (!expires) return;
  const wait = Math.max(10_000, expires - Date.now() - REFRESH_BEFORE_MS);
  state.refreshTimer = setTimeout(async () => {
    try {
      saveSession(await api('POST', '/auth/refresh'));
    } catch (error) {
      showError('Could not renew your session: ' + error.message);
    }
  }, wait);
}

// A program that embeds the chat signs its own users in: it opens the page
// with a token of theirs in the URL's fragment (#token=...), which a browser
// never sends to any server (README, "Embedding"). The token leaves the
// address bar and the history at once, before anything can fail.
export function tokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token) history.replaceState(history.state, '', location.pathname + location.search);
  return token;
}

// Then it is kept as a login's token is; GET /users/me says whose it is.
export async function signInWithToken(token) {
  showError('');
  state.token = token;
  try {
    const {user} = await api('GET', '/users/me');
    if (!state.user || state.user.id !== user.id) {  // another user's room and place are not ours
      sessionStorage.clear();
      Object.assign(state, {roomId: null, lastIdByRoom: {}, unsent: []});
    }
    saveSession({token, id: user.id, username: user.username});
    showChat(user);
  } catch (error) {
    if (state.token) logout(error.message);  // else a 401 signed the page out, saying why
  }
}

async function signIn(path) {
  showError('');
  try {
    saveSession(await api('POST', path, {username: $('username').value, password: $('password').value}));
  } catch (error) {
    return showError(error.message);
  }
  const typed = $('password').value;  // the current password, should a new one be due
  $('password').value = '';
  showChat(null, typed);
}

// -- the chat, once we know who we are ----------------------------------------

// GET /users/me first: it says the role, and whether a new password is due
// (until it is chosen, the server answers little else). The user, when the
// caller has just asked for it; the password just typed, if any.
export async function showChat(user, typedPassword = '') {
  user = user || await whoAmI();
  if (!state.token) return;  // a 401 signed the page out, saying why
  if (user?.must_change_password) return askForNewPassword(typedPassword);
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  showAccountButtons(true);
  if (user) rememberProfile(user);
  else showOwnName();
  showPane(state.roomId ? 'conversation' : 'rooms');
  showNotifyButton();
  scheduleRefresh();
  refreshRooms();
  if (user) setRole(user.role);
  loadBlockedThenConnect();
}

// The role is not kept with the session: an admin may have changed it since.
async function whoAmI() {
  try {
    return (await api('GET', '/users/me')).user;
  } catch (error) {
    if (state.token) showError(error.message);  // else the session ended, and logout said so
    return null;
  }
}

// "Log out": the server ends the session, then the page forgets it. Our
// socket goes first, so that neither its close nor the server's 4001 is
// taken for a dropped connection.
async function endSession() {
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000);
  try {
    await api('POST', '/auth/logout');
  } catch (error) {
    // Ended already, or the server is out of reach: signing out here is all that is left.
  }
  logout();
}

// Forget the session on this page (the server may not know: see endSession).
export function logout(reason) {
  const socket = state.socket;
  forgetSession();  // first, so the socket's close does not reconnect
  clearTimeout(state.refreshTimer);
  if (socket) socket.close(1000);
  document.title = 'SwiftChat';
  closeSearch();
  forgetFiles();
  showPasswordForm(false);
  showAddMember(false);
  for (const dialog of document.querySelectorAll('dialog')) if (dialog.open) dialog.close();
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  showAccountButtons(false);
  $('admin').hidden = true;
  $('reports').hidden = true;
  showOwnName();
  setStatus('');
  showError(reason || '');
}

// What the top bar offers anyone signed in (admin.js and reports.js show their own buttons).
function showAccountButtons(shown) {
  for (const id of ['profile', 'change-password', 'logout']) $(id).hidden = !shown;
  showMenuButton(shown);
}

export function setRole(role) {
  state.role = role;
  $('admin').hidden = role !== 'admin';
  if (role !== 'admin' && $('admin-view').open) $('admin-view').close();
  permissionsChanged();
  loadOpenReports();  // an admin's are every room's
}

// -- a new password -------------------------------------------------------------

function showPasswordForm(shown) {
  $('password-form').hidden = !shown;
  $('change-password').setAttribute('aria-expanded', String(shown));
  $('password-form').reset();
  showPasswordOutcome('', '');
  if (shown) $('old-password').focus();
}

function showPasswordOutcome(error, done) {
  $('password-error').textContent = error;
  $('password-changed').textContent = done;
}

async function changePassword() {
  showPasswordOutcome('', '');
  try {
    await postNewPassword($('old-password').value, $('new-password').value);
    $('password-form').reset();
    showPasswordOutcome('', 'Password changed');
  } catch (error) {
    showPasswordOutcome(error.message, '');
  }
}

// The answer is a token of a new session, as login's; every earlier
// session of the user ends, this page's own included, so its socket is
// closed with 4001, maybe before the answer is here. Until then that close
// is this change's doing (socket.js), and the new token reconnects.
async function postNewPassword(oldPassword, newPassword) {
  state.changingPassword = true;
  try {
    saveSession(await api('POST', '/auth/password', {old_password: oldPassword, new_password: newPassword}));
  } finally {
    state.changingPassword = false;
    // Ended, yet no new session came: it was ended by something else.
    if (state.awaitingSession) logout('Your session has ended. Please log in again.');
  }
}

// -- a password of one's own (must_change_password) ----------------------------

// Someone else chose this account's password (an import, an admin), and
// the server answers little else until its owner chooses one: a modal
// dialog asks at once, before the chat is shown. The current password is
// the one just typed at login, if any. Closing the dialog any other way
// (Escape, "Log out") signs out.
export function askForNewPassword(typedPassword = '') {
  const dialog = $('own-password');
  if (dialog.open) return;
  const form = $('own-password-template').content.firstElementChild.cloneNode(true);
  form.elements.username.value = state.user?.username || '';
  form.elements.old.value = typedPassword;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    chooseOwnPassword(form);
  });
  form.querySelector('[data-control=logout]').addEventListener('click', endSession);
  dialog.append(form);
  dialog.returnValue = '';
  dialog.showModal();
  (typedPassword ? form.elements.new : form.elements.old).focus();
}

async function chooseOwnPassword(form) {
  form.querySelector('[role=alert]').textContent = '';
  try {
    await postNewPassword(form.elements.old.value, form.elements.new.value);
  } catch (error) {
    form.querySelector('[role=alert]').textContent = error.message;
    return;
  }
  $('own-password').close('changed');
  if ($('chat-view').hidden) showChat();
  else if (!state.socket) reconnectNow();  // the server closed it until the password was changed
}

// GET /info says whether anyone may register (--registration). While it is
// closed, admins make the accounts, and a "Register" button would only
// ever answer "Registration is closed". Until the answer comes, and where
// there is none, the button stays: the server refuses what it must.
async function offerRegistration() {
  try {
    $('register-button').hidden = (await api('GET', '/info')).registration === 'closed';
  } catch (error) {
    // Out of reach: signing in will say so.
  }
}

// -- wiring -----------------------------------------------------------------

// After every module has loaded (module scripts run before this event), as main.js asks.
document.addEventListener('DOMContentLoaded', offerRegistration);

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  signIn('/auth/login');
});
$('register-button').addEventListener('click', () => {
  if ($('login-form').reportValidity()) signIn('/auth/register');
});
$('logout').addEventListener('click', endSession);

$('change-password').addEventListener('click', () => showPasswordForm($('password-form').hidden));
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  changePassword();
});
$('own-password').addEventListener('close', () => {
  $('own-password-form')?.remove();
  if ($('own-password').returnValue !== 'changed' && state.token) endSession();
});
$('password-form').addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  showPasswordForm(false);
  focusTopBarButton('change-password');  // on a phone it waits behind "Menu"
});
