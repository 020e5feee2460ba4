/**
 * The page of `/debug/top?html`: one static document whose script reads the JSON of `/debug/top` (the same path
 * without the query, so it works behind `kubectl proxy` or any path prefix) every 5 s and fills three tables.
 * Names come from any client that can send a query, so they only ever reach the page as text (textContent), and
 * the Content-Security-Policy allows this page's own script and style, by hash, and nothing else.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
h2 { font-size: 1.05em; margin: 1.4em 0 .3em; }
#summary { color: #555; }
table { border-collapse: collapse; min-width: 40em; }
th, td { text-align: left; padding: .15em .8em .15em 0; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; }
td.name { font-family: ui-monospace, monospace; word-break: break-all; }
.empty { color: #777; font-style: italic; }
#error { color: #b00; }
`;

const SCRIPT = `
const source = location.pathname;
const tables = {
  names: [['name', 'name'], ['rcode', ''], ['count', 'n'], ['error', 'n']],
  clients: [['client', 'name'], ['count', 'n'], ['error', 'n']],
  pairs: [['client', 'name'], ['name', 'name'], ['rcode', ''], ['count', 'n'], ['error', 'n']],
};
function fill(id, rows) {
  const body = document.querySelector('#' + id + ' tbody');
  const columns = tables[id];
  body.replaceChildren();
  if (rows.length === 0) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = columns.length;
    cell.className = 'empty';
    cell.textContent = 'no NXDOMAIN or SERVFAIL in the window';
    return;
  }
  for (const row of rows) {
    const line = body.insertRow();
    for (const [field, kind] of columns) {
      const cell = line.insertCell();
      cell.className = kind;
      cell.textContent = field === 'error' ? (row.error === 0 ? '' : '\\u00b1' + row.error) : String(row[field]);
    }
  }
}
async function refresh() {
  try {
    const response = await fetch(source, { cache: 'no-store' });
    if (!response.ok) throw new Error(source + ': HTTP ' + response.status);
    const report = await response.json();
    document.getElementById('summary').textContent = report.failures + ' NXDOMAIN and SERVFAIL answers in the last '
      + report.window.seconds + ' s (since ' + report.window.since + '; ' + report.capacity + ' counters per table, '
      + report.window.intervalSeconds + ' s intervals)';
    for (const id of Object.keys(tables)) fill(id, report[id]);
    document.getElementById('error').textContent = '';
    document.body.dataset.loaded = 'true';
  } catch (error) {
    document.getElementById('error').textContent = 'cannot read ' + source + ': ' + error.message;
  }
  setTimeout(refresh, 5000);
}
refresh();
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Only this page's own script and style run, and its script may only read this server. */
export const TOP_PAGE_POLICY = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const table = (id: string, title: string, headings: readonly string[]): string =>
  `<h2>${title}</h2>\n<table id="${id}"><thead><tr>${headings.map((heading) => `<th${heading === 'count' || heading === '±' ? ' class="n"' : ''}>${heading}</th>`).join('')}</tr></thead><tbody></tbody></table>`;

export const TOP_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>clusterdns: failing names</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Which names fail, and who asks</h1>
<p id="summary">loading…</p>
<p id="error"></p>
${table('names', 'Names answered NXDOMAIN or SERVFAIL', ['name', 'rcode', 'count', '±'])}
${table('clients', 'Clients they were answered to', ['client', 'count', '±'])}
${table('pairs', 'Client and name', ['client', 'name', 'rcode', 'count', '±'])}
<script>${SCRIPT}</script>
</body>
</html>
`;
