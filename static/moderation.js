// What a room's moderators, its owner and admins do to its members, each
// over REST: "Remove" (they may join again) and "Ban" (they may not, until
// added back), "Mute" for some minutes (the Mute dialog asks how many) and
// "Unmute", and "Make moderator" or "Make member" (the owner and admins).
// The server checks every right; the member menu (member_menu.js) offers
// only what this viewer has, and calls these. The list follows the answers
// here and the room's frames (member_updated, user_left: members.js).

import {state} from './state.js';
import {$, isolated, showError} from './dom.js';
import {api} from './api.js';
import {refreshMembers, applyMember} from './members.js';
import {focusActionsButton} from './member_menu.js';

function memberPath(userId) {
  return `/rooms/${encodeURIComponent(state.joinedRoomId)}/members/${encodeURIComponent(userId)}`;
}

// Their connections in the room leave it and are told (room_removed); the
// room hears user_left if they were here.
export async function removeMember(userId, ban) {
  showError('');
  try {
    await api('DELETE', memberPath(userId) + (ban ? '?ban=true' : ''));
  } catch (error) {
    showError(error.message);
  }
  refreshMembers();  // and with it the room list's count
}

// A mute, a role: the answer's member where it gives one, else the list
// asked again (the member_updated frame that follows changes nothing more).
async function changeMember(method, path, body) {
  const data = await api(method, path, body);
  const member = data?.member || (data?.id && data?.username ? data : null);
  if (member) applyMember(member);
  else refreshMembers();
}

export async function setMemberRole(userId, role) {
  showError('');
  try {
    await changeMember('PATCH', memberPath(userId), {role});
  } catch (error) {
    showError(error.message);
  }
}

export async function unmute(userId) {
  showError('');
  try {
    await changeMember('DELETE', `${memberPath(userId)}/mute`);
  } catch (error) {
    showError(error.message);
  }
}

// -- the Mute dialog --------------------------------------------------------------

export function askToMute(userId) {
  const member = state.members.find((m) => m.id === userId);
  if (!member) return;
  state.muting = userId;
  $('mute-title').replaceChildren('Mute ', isolated(member.username));
  $('mute-error').textContent = '';
  $('mute-minutes').value = '10';
  $('mute-dialog').showModal();  // and the minutes have the focus
  $('mute-minutes').select();
}

// 1 to 10080 minutes (a week), as the server takes them; the form checks first.
async function mute() {
  $('mute-error').textContent = '';
  try {
    await changeMember('POST', `${memberPath(state.muting)}/mute`, {minutes: Number($('mute-minutes').value)});
  } catch (error) {
    $('mute-error').textContent = error.message;
    return;
  }
  $('mute-dialog').close();
}

// -- wiring -----------------------------------------------------------------

$('mute-form').addEventListener('submit', (event) => {
  event.preventDefault();
  mute();
});
$('cancel-mute').addEventListener('click', () => $('mute-dialog').close());
// However it closes (muted, "Cancel", Escape), the keyboard goes back to the member's actions.
$('mute-dialog').addEventListener('close', () => {
  if (state.muting != null) focusActionsButton(state.muting);
  state.muting = null;
});
