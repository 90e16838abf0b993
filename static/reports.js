// Reports. Anyone may report someone else's message, once, with a reason
// (the Report dialog). It goes to the room's moderators (for now its
// creator) and to the admins, who hear of it at once ("New report": the
// count on the "Reports" button goes up) and settle it in the Reports view
// ("Resolve" or "Dismiss"). The "Report" button on a message is drawn by
// message_actions.js; who moderates what is the server's to say.

import {state} from './state.js';
import {$, controlButton, element, isolated} from './dom.js';
import {api} from './api.js';
import {formatted} from './format.js';
import {attachmentNames} from './attachments.js';
import {addNotice, findMessage} from './messages.js';
import {authorElement} from './names.js';

export function askToReport(id) {
  const item = findMessage(id);
  if (!item) return;
  state.reporting = id;
  $('report-form').reset();
  $('report-error').textContent = '';
  const text = element('p', ...formatted(item.content, state.user.username));
  text.className = 'content';
  text.dir = 'auto';
  $('report-quote').replaceChildren(authorElement(item.user_id, item.username), text,
                                    ...attachmentNames(item.attachments));
  $('report-dialog').showModal();  // and the reason's box has the focus
}

// A second report of the same message is refused (409 "Already reported"):
// the dialog stays open and says so.
async function sendReport() {
  $('report-error').textContent = '';
  try {
    await api('POST', `/messages/${state.reporting}/report`, {reason: $('report-reason').value});
  } catch (error) {
    $('report-error').textContent = error.message;
    return;
  }
  $('report-dialog').close();
  addNotice('Report received: the moderators will look at it.');
}

// Who sees "Reports": admins see every room's reports, and a room's creator
// moderates it, as do the moderators of the room here (the member list
// says); a moderator of another room once the server lists a report for them.
function seesReports() {
  return state.role === 'admin' || state.openReports.length > 0 || state.moderating
    || state.rooms.some((room) => room.kind !== 'direct' && room.creator_id === state.user?.id);
}

export function showReportsButton() {
  const count = state.openReports.length;
  $('reports').hidden = !state.token || !seesReports();
  $('reports').setAttribute('aria-label', `Reports, ${count} open`);
  $('reports-count').textContent = String(count);
  $('reports-count').hidden = count === 0;
}

async function fetchReports(status) {
  return (await api('GET', `/reports?status=${status}`)).reports;
}

// The open reports, for the count and the view. A report told live while the
// list was on its way is kept: the list may have been read before it was made.
// Answers with what went wrong ('' if nothing), for the view to show.
export async function loadOpenReports() {
  const heard = state.reportsHeard = [];
  let reports = null, problem = '';
  try {
    reports = await fetchReports('open');  // none for a user who moderates nothing
  } catch (error) {
    problem = error.message;  // the count stays as it was; the view says what went wrong
  }
  if (heard !== state.reportsHeard || !state.token) return problem;  // a newer load, or signed out
  state.reportsHeard = null;
  if (reports) state.openReports = reports;
  heard.forEach(addOpenReport);
  showReportsButton();
  if ($('reports-view').open) renderReports();
  return problem;
}

// "New report": a report in a room we moderate, just made.
export function onReport(report) {
  if (state.reportsHeard) state.reportsHeard.push(report);
  addOpenReport(report);
}

function addOpenReport(report) {
  if (state.openReports.some((r) => r.id === report.id)) return;
  state.openReports = [report, ...state.openReports].sort((a, b) => b.id - a.id);
  if ($('report-filter').value === 'all') state.listedReports = [report, ...state.listedReports];
  showReportsButton();
  if ($('reports-view').open) renderReports();
}

async function openReportsView() {
  showReportsError('');
  $('reports-view').showModal();
  await listReports();
}

// Asked again each time: another moderator may have settled some meanwhile.
async function listReports() {
  const status = $('report-filter').value;
  showReportsError('');
  if (status === 'open') {
    showReportsError(await loadOpenReports());
  } else {
    try {
      state.listedReports = await fetchReports(status);
    } catch (error) {
      state.listedReports = [];
      showReportsError(error.message);
    }
  }
  if (status === $('report-filter').value) renderReports();  // else a newer choice draws its own
}

function showReportsError(text) {
  $('reports-error').textContent = text;
  $('reports-error').hidden = !text;
}

function shownReports() {
  return $('report-filter').value === 'open' ? state.openReports : state.listedReports;
}

function renderReports() {
  const status = $('report-filter').value;
  const reports = shownReports();
  const focused = focusInReports();
  $('report-list').replaceChildren(...reports.map(reportItem));
  $('reports-empty').textContent = status === 'all' ? 'No reports.' : `No ${status} reports.`;
  $('reports-empty').hidden = reports.length > 0;
  restoreReportFocus(focused);
}

// A keyboard user stays on their button while reports come and go; when
// its report has left the list, on the one that took its place.
function focusInReports() {
  const row = document.activeElement?.closest('#report-list li');
  if (!row) return null;
  return {id: row.dataset.reportId, control: document.activeElement.dataset.control,
          place: [...$('report-list').children].indexOf(row)};
}

function restoreReportFocus(focused) {
  if (!focused) return;
  const rows = [...$('report-list').children];
  const same = rows.find((row) => row.dataset.reportId === focused.id);
  const target = same?.querySelector(`[data-control="${focused.control}"]`)
    || rows[Math.min(focused.place, rows.length - 1)]?.querySelector('button');
  (target || $('report-filter')).focus();
}

// Where and by whom, what was written (the report's own copy), who reported
// it, when, and why.
function reportItem(report) {
  const {message} = report;
  const where = element('p', isolated(message.room_name, 'room-name'), ' · ',
                        isolated(message.sender.username, 'author'));
  where.className = 'meta';
  const text = element('p', ...formatted(message.content, state.user.username));
  text.className = 'content';
  text.dir = 'auto';
  const when = new Date(report.created_at);
  const time = element('time', when.toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'}));
  time.dateTime = report.created_at;
  const by = element('p', 'Reported by ', isolated(report.reporter.username), ' · ', time);
  by.className = 'meta';
  const reason = report.reason ? element('p', isolated(report.reason)) : element('p', 'No reason given');
  reason.className = report.reason ? 'reason' : 'reason empty';
  const li = element('li', where, text, by, reason, reportActions(report));
  li.className = 'report';
  li.dataset.reportId = report.id;
  return li;
}

function reportActions(report) {
  if (report.status !== 'open') {
    const settled = element('p', report.status === 'resolved' ? 'Resolved' : 'Dismissed');
    settled.className = 'settled';
    return settled;
  }
  const buttons = element('div', controlButton('Resolve', 'resolve'), controlButton('Dismiss', 'dismiss'));
  buttons.className = 'buttons';
  return buttons;
}

// Settled, a report leaves the open list and the count.
async function settleReport(id, status) {
  showReportsError('');
  try {
    const {report} = await api('PATCH', `/reports/${id}`, {status});
    state.openReports = state.openReports.filter((r) => r.id !== id);
    state.listedReports = state.listedReports.map((r) => (r.id === id ? report : r));
  } catch (error) {
    showReportsError(error.message);
  }
  showReportsButton();
  renderReports();
}

// What each button of a report does, by its data-control.
const REPORT_CONTROLS = {
  resolve: (id) => settleReport(id, 'resolved'),
  dismiss: (id) => settleReport(id, 'dismissed'),
};

// -- wiring -----------------------------------------------------------------

$('report-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendReport();
});
$('cancel-report').addEventListener('click', () => $('report-dialog').close());

$('reports').addEventListener('click', openReportsView);
$('close-reports').addEventListener('click', () => $('reports-view').close());
$('report-filter').addEventListener('change', listReports);
$('report-list').addEventListener('click', (event) => {
  const button = event.target.closest('button[data-control]');
  const action = button && REPORT_CONTROLS[button.dataset.control];
  if (action) action(Number(button.closest('li').dataset.reportId));
});
