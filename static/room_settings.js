// The room header's "Settings" menu, for those in charge of the room: its
// moderators (and owner, and admins) choose who may post ("Everyone" or
// "Only moderators") and slow mode (seconds between one member's posts),
// and export its history as CSV, JSON or a printable page; its owner and
// admins also change its description and delete it. The server checks
// every right; this menu shows only what the viewer has. The room's fields
// come from the room list (rooms.js), kept up by room_updated.

import {state, currentRoom, moderating, owning} from './state.js';
import {$, downloadFile, showError} from './dom.js';
import {api, apiFile} from './api.js';
import {renderRooms} from './rooms.js';

// Called with the room header: what the menu holds follows our rights here.
export function showRoomSettings() {
  const room = currentRoom();
  const shown = Boolean(room) && room.kind !== 'direct' && moderating();
  $('creator-tools').hidden = !shown;
  if (!shown) $('creator-tools').open = false;
  $('description-form').hidden = $('delete-room').hidden = !owning();
  if (!room || $('creator-tools').querySelector('.menu').contains(document.activeElement)) return;  // being edited
  $('new-description').value = room.description;
  $('posting').value = room.posting || 'everyone';
  $('slow-mode').value = String(room.slow_mode || 0);
}

function showSettingsOutcome(error, done) {
  $('settings-error').textContent = error;
  $('posting-outcome').textContent = done;
}

function roomPath() {
  return `/rooms/${encodeURIComponent(state.joinedRoomId)}`;
}

async function saveDescription() {
  try {
    await api('PATCH', roomPath(), {description: $('new-description').value});
    $('new-description').blur();
    $('creator-tools').open = false;
  } catch (error) {
    showSettingsOutcome(error.message, '');
  }
}

// Everyone who may see the room hears room_updated; the answer is applied
// here at once all the same, so that the menu and the composer agree.
async function savePosting() {
  const changes = {posting: $('posting').value, slow_mode: Number($('slow-mode').value)};
  showSettingsOutcome('', '');
  try {
    await api('PATCH', roomPath(), changes);
  } catch (error) {
    return showSettingsOutcome(error.message, '');
  }
  const room = currentRoom();
  if (room) Object.assign(room, changes);
  renderRooms();
  showSettingsOutcome('', 'Settings saved');
}

// The export needs the token in a header, which a link cannot send: it is
// fetched, then handed to the browser as a file of its own.
async function exportRoom() {
  const room = currentRoom();
  const format = $('export-format').value;
  showSettingsOutcome('', '');
  try {
    const {blob, filename} = await apiFile(`${roomPath()}/export?format=${format}`);
    const today = new Date().toISOString().slice(0, 10);
    downloadFile(blob, filename || `${room?.name || 'room'}-${today}.${format}`);
    showSettingsOutcome('', 'Export downloaded');
  } catch (error) {
    showSettingsOutcome(error.message, '');
  }
}

async function deleteRoom() {
  const roomId = state.joinedRoomId;
  if (!roomId || !confirm('Delete this room and all its messages?')) return;
  $('creator-tools').open = false;
  try {
    await api('DELETE', `/rooms/${encodeURIComponent(roomId)}`);
  } catch (error) {
    showError(error.message);
  }
}

// -- wiring -----------------------------------------------------------------

$('description-form').addEventListener('submit', (event) => {
  event.preventDefault();
  saveDescription();
});
$('posting-form').addEventListener('submit', (event) => {
  event.preventDefault();
  savePosting();
});
$('export-form').addEventListener('submit', (event) => {
  event.preventDefault();
  exportRoom();
});
$('delete-room').addEventListener('click', deleteRoom);
// Opened again, the menu says nothing of last time, and shows the room as it is now.
$('creator-tools').addEventListener('toggle', () => {
  if (!$('creator-tools').open) return;
  showSettingsOutcome('', '');
  showRoomSettings();
});
