// The Admin view's "Import accounts": a class's accounts at once, from CSV
// pasted into the box or read from a chosen file into it (columns
// username, then optionally password and role; a first row that names the
// columns is read as their order). They go to the server in one request
// (POST /users/import), which makes every new one or none; the passwords
// it made up are shown once, in a table, with a download of them as CSV
// (username,password lines, as the command line's `users import` prints),
// and are forgotten when the view closes. The list of users, and the
// view's lines that say what happened, are admin.js's.

import {$, element, isolated} from './dom.js';
import {api} from './api.js';
import {reloadUsers, showAdminOutcome} from './admin.js';

const COLUMNS = ['username', 'password', 'role'];

// RFC 4180: fields split by commas; a field in double quotes may hold
// commas and line breaks, and "" for a quote. Rows are arrays of strings.
function csvRows(text) {
  const rows = [[]];
  let field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '"' && text[i + 1] === '"') field += text[i++];
    else if (c === '"') quoted = !quoted;
    else if (quoted || (c !== ',' && c !== '\n' && c !== '\r')) field += c;
    else {
      rows[rows.length - 1].push(field);
      field = '';
      if (c === '\r' && text[i + 1] === '\n') i++;
      if (c !== ',') rows.push([]);
    }
  }
  rows[rows.length - 1].push(field);
  return rows;
}

// [{username, password?, role?, line}, ...] from CSV text, or an Error
// naming the line that has no username. Blank lines and spaces around
// fields go; `line` is where the account was, for the server's errors.
function accountsFrom(text) {
  const rows = csvRows(text.replace(/^\uFEFF/, ''))  // a spreadsheet's byte order mark
    .map((cells, index) => ({line: index + 1, cells: cells.map((cell) => cell.trim())}))
    .filter(({cells}) => cells.some(Boolean));
  const header = rows[0]?.cells.map((cell) => cell.toLowerCase());
  const named = Boolean(header?.includes('username'));
  const columns = named ? header : COLUMNS;
  return (named ? rows.slice(1) : rows).map(({line, cells}) => {
    const account = {line};
    columns.forEach((column, i) => { if (COLUMNS.includes(column) && cells[i]) account[column] = cells[i]; });
    if (!account.username) throw new Error(`Line ${line} has no username.`);
    return account;
  });
}

async function importAccounts() {
  clearResults();
  let accounts;
  try {
    accounts = accountsFrom($('import-csv').value);
    if (!accounts.length) throw new Error('Paste some accounts, or choose a CSV file, first.');
    const users = accounts.map(({line, ...user}) => user);
    showResults(await api('POST', '/users/import', {users}));
  } catch (error) {
    showAdminOutcome(byLine(error.message, accounts), '');
    return;
  }
  $('import-csv').value = '';
  $('import-file').value = '';
  reloadUsers();
}

// The server names a refused account by its place in the request
// ("users[2]: Invalid username"); the teacher knows it by its line.
function byLine(error, accounts) {
  const [, index, problem] = /^users\[(\d+)\]: (.*)$/s.exec(error) || [];
  const account = accounts?.[Number(index)];
  return account ? `Line ${account.line}: ${problem}` : error;
}

// -- what the import made -------------------------------------------------------

function showResults({created, skipped}) {
  const counts = `${created.length} account${created.length === 1 ? '' : 's'} created`
    + (skipped.length ? `, ${skipped.length} skipped` : '') + '.';
  showAdminOutcome('', counts);
  const shown = [];
  if (created.length) shown.push(passwordTable(created), downloadLink(created));
  if (skipped.length) shown.push(skippedList(skipped));
  $('import-results').replaceChildren(...shown);
}

function passwordTable(created) {
  const caption = element('caption', 'New accounts: their passwords are shown only now');
  const head = element('thead', element('tr', element('th', 'Username'), element('th', 'Password')));
  const rows = created.map(({user, password}) =>
    element('tr', element('td', isolated(user.username)), element('td', element('code', password))));
  for (const th of head.querySelectorAll('th')) th.scope = 'col';
  return element('table', caption, head, element('tbody', ...rows));
}

// username,password lines under a header line, as `users import` prints them.
function downloadLink(created) {
  const lines = ['username,password', ...created.map(({user, password}) =>
    [user.username, password].map(csvField).join(','))];
  const link = element('a', 'Download the passwords (CSV)');
  link.href = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], {type: 'text/csv'}));
  link.download = `accounts-${new Date().toISOString().slice(0, 10)}.csv`;
  link.className = 'download';
  return link;
}

function csvField(text) {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function skippedList(skipped) {
  const items = skipped.map(({username, error}) => element('li', isolated(username), `: ${error}`));
  const list = element('ul', ...items);
  list.setAttribute('aria-label', 'Skipped');
  return element('div', element('p', 'Skipped (these names exist already, or could not be made):'), list);
}

// The passwords leave the page: a new import, or the Admin view closed.
function clearResults() {
  const link = $('import-results').querySelector('a.download');
  if (link) URL.revokeObjectURL(link.href);
  $('import-results').replaceChildren();
  showAdminOutcome('', '');
}

// A chosen file is read into the box, where it can be checked before "Import".
async function readChosenFile() {
  const file = $('import-file').files[0];
  if (!file) return;
  clearResults();
  $('import-csv').value = await file.text();
}

// -- wiring -----------------------------------------------------------------

$('import-form').addEventListener('submit', (event) => {
  event.preventDefault();
  importAccounts();
});
$('import-file').addEventListener('change', readChosenFile);
$('admin-view').addEventListener('close', () => {
  clearResults();
  $('import-form').reset();
});
