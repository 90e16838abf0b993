// Editing and deleting messages: the editor that takes a message's text's
// place ("Edit", on one's own), and the "Delete this message?" question
// asked in the page ("Delete", on one's own and, for moderators, on all),
// which takes the place of the message's action bar (message_actions.js
// draws the bar and its buttons). Both go over REST
// (PATCH and DELETE /messages/{id}) rather than the socket's edit_message
// and delete_message: the answer belongs to the request, so an error ("You
// cannot change this message") is shown beside the editor it is about.
// Everyone in the room, this page included, also hears message_updated or
// message_deleted, which messages.js applies; applying either twice is
// harmless. Where the message is drawn, and its buttons' one click
// listener, are messages.js's.

import {state} from './state.js';
import {$, controlButton, showError} from './dom.js';
import {api} from './api.js';
import {findMessage, redrawMessage, applyUpdate, removeMessage} from './messages.js';

// Asked in the page (window.confirm would stop every script, the socket's included).
export function deleteQuestion(item) {
  const question = document.createElement('span');
  question.id = `delete-question-${item.id}`;
  question.textContent = 'Delete this message?';
  const actions = document.createElement('div');
  actions.className = 'delete-question';
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-labelledby', question.id);
  actions.append(question, controlButton('Confirm delete', 'confirm-delete', 'danger'),
                 controlButton('Cancel', 'cancel-delete'));
  return actions;
}

export function editorFor() {
  const input = document.createElement('textarea');
  input.dataset.control = 'editor';
  input.setAttribute('aria-label', 'Edit message');
  input.maxLength = 4000;
  input.rows = 3;
  input.dir = 'auto';
  input.value = state.editing.draft;
  const error = document.createElement('span');
  error.className = 'edit-error';
  error.setAttribute('role', 'alert');
  error.textContent = state.editing.error;
  error.hidden = !state.editing.error;
  const save = controlButton('Save', 'save');
  save.type = 'submit';
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  buttons.append(save, controlButton('Cancel', 'cancel-edit'));
  const form = document.createElement('form');
  form.className = 'editor';
  form.append(input, error, buttons);
  return form;
}

function focusControl(id, control) {
  const target = $('messages').querySelector(`li[data-id="${id}"] [data-control="${control}"]`);
  if (target) target.focus();
  return target;
}

export function startEditing(id) {
  const item = findMessage(id);
  if (!item) return;
  const asked = state.confirmingDelete;
  state.editing = {id, draft: item.content, error: ''};
  state.confirmingDelete = null;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  const input = focusControl(id, 'editor');
  input.setSelectionRange(input.value.length, input.value.length);
}

export function stopEditing() {
  const {id} = state.editing;
  state.editing = null;
  redrawMessage(id);
  focusControl(id, 'edit');
}

async function saveEdit() {
  const {id, draft} = state.editing;
  if (draft === findMessage(id)?.content) return stopEditing();
  try {
    const message = await api('PATCH', `/messages/${id}`, {content: draft});
    const wasFocused = document.activeElement.closest(`#messages li[data-id="${id}"]`);
    if (state.editing && state.editing.id === id) state.editing = null;
    applyUpdate(message);
    if (wasFocused) focusControl(id, 'edit');
  } catch (error) {
    showEditError(id, error.message);
  }
}

function showEditError(id, text) {
  if (!state.editing || state.editing.id !== id) return showError(text);
  state.editing.error = text;
  const error = $('messages').querySelector(`li[data-id="${id}"] .edit-error`);
  error.textContent = text;
  error.hidden = false;
}

export function askToDelete(id) {
  const asked = state.confirmingDelete;
  state.confirmingDelete = id;
  if (asked != null) redrawMessage(asked);
  redrawMessage(id);
  focusControl(id, 'confirm-delete');
}

export function cancelDelete() {
  const id = state.confirmingDelete;
  state.confirmingDelete = null;
  redrawMessage(id);
  focusControl(id, 'delete');
}

export async function deleteMessage(id) {
  try {
    removeMessage(await api('DELETE', `/messages/${id}`));
  } catch (error) {
    showError(error.message);
    if (state.confirmingDelete === id) cancelDelete();
  }
}

// -- wiring: the editor's form and keys, inside the message list ------------

$('messages').addEventListener('submit', (event) => {
  event.preventDefault();  // the editor's form: "Save"
  saveEdit();
});
$('messages').addEventListener('input', (event) => {
  if (event.target.dataset.control === 'editor') state.editing.draft = event.target.value;
});
$('messages').addEventListener('keydown', (event) => {
  if (event.target.closest('.picker')) return;  // the reaction picker's keys are reactions.js's
  if (event.key === 'Escape' && state.editing) stopEditing();
  else if (event.key === 'Escape' && state.confirmingDelete != null) cancelDelete();
  else if (event.target.dataset.control === 'editor' && event.key === 'Enter' && !event.shiftKey
           && !event.isComposing) {
    event.preventDefault();  // as in the composer: Enter saves, Shift+Enter is a new line
    saveEdit();
  }
});
