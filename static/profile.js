// Your own name as others see it: the top bar shows your display name
// (your username on hover; mentions stay @username), and "Profile" opens
// a dialog to change it and your status line ("In the library until 3"),
// saved with PATCH /users/me. Everyone in your rooms then hears
// user_updated, which socket.js hands on as a `swiftchat:user-updated`
// event; your own page hears it too (another tab of yours may have saved).
// Other members' names are members.js's; who is signed in is session.js's.

import {state} from './state.js';
import {$} from './dom.js';
import {api} from './api.js';
import {onUserUpdated} from './members.js';

// The name and status line a user object carries, kept with the session.
// What it leaves out stays as it was (session.js starts the name as the
// username, which is all a server before 1.3 knows).
export function rememberProfile(user) {
  if (!state.user || user.id !== state.user.id) return;
  if (user.display_name) state.user.display_name = user.display_name;
  if (typeof user.status === 'string') state.user.status = user.status;
  sessionStorage.setItem('swiftchat.user', JSON.stringify(state.user));
  showOwnName();
}

export function showOwnName() {
  const user = state.user;
  $('whoami').textContent = user ? user.display_name || user.username : '';
  $('whoami').title = user ? [user.username, user.status].filter(Boolean).join(' · ') : '';
}

function openProfile() {
  $('profile-form').reset();
  $('profile-error').textContent = '';
  $('profile-username').textContent = `@${state.user.username}`;
  $('display-name').value = state.user.display_name || state.user.username;
  $('profile-status').value = state.user.status || '';
  $('profile-dialog').showModal();
  $('display-name').focus();
}

// The server trims both and says what it refuses ("Display name must be
// 1-40 characters", say); the dialog stays open with that until it is put right.
async function saveProfile() {
  $('profile-error').textContent = '';
  try {
    const {user} = await api('PATCH', '/users/me', {
      display_name: $('display-name').value, status: $('profile-status').value,
    });
    rememberProfile(user);
    onUserUpdated(user);  // our own row in the member list
    $('profile-dialog').close();
  } catch (error) {
    $('profile-error').textContent = error.message;
  }
}

// -- wiring -----------------------------------------------------------------

$('profile').addEventListener('click', openProfile);
$('cancel-profile').addEventListener('click', () => $('profile-dialog').close());
$('profile-form').addEventListener('submit', (event) => {
  event.preventDefault();
  saveProfile();
});
document.addEventListener('swiftchat:user-updated', (event) => rememberProfile(event.detail));
