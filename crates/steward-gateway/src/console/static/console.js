// Steward console: live updates for the activity stream and the approvals list.
// Plain JavaScript, no framework, no inline code (the CSP allows only this file). Text from the
// gateway goes into the page with textContent, never as markup, except the approvals fragment,
// which the gateway rendered and escaped itself.
(function () {
  'use strict';

  function cell(tr, content, cls) {
    const td = document.createElement('td');
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content == null ? '' : String(content);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function link(href, text) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    return a;
  }

  function badge(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  // 2026-01-31T14:05:09.123Z -> 2026-01-31 14:05:09 UTC (as the server renders it).
  function when(ts) {
    return String(ts || '').replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
  }

  function safeClass(s) {
    return String(s || '').replace(/[^A-Za-z0-9_-]/g, '');
  }

  function rowOf(r) {
    const tr = document.createElement('tr');
    tr.dataset.seq = String(r.seq);
    tr.className = 'kind-' + safeClass(r.kind) + ' effect-' + safeClass(r.effect) + ' new';
    cell(tr, link('/ui/activity/' + encodeURIComponent(r.seq), String(r.seq)));
    cell(tr, when(r.ts));
    cell(tr, r.kind);
    cell(tr, r.principal);
    cell(tr, r.server ? r.server + (r.tool ? '/' + r.tool : '') : '');
    cell(tr, r.effect ? badge('badge effect-' + safeClass(r.effect), r.effect) : '');
    cell(tr, r.risk);
    cell(tr, r.outcome);
    cell(tr, r.approval_id ? link('/ui/approvals/' + encodeURIComponent(r.approval_id), r.approval_id) : '');
    cell(tr, String(r.reason || '').slice(0, 300), 'reason');
    return tr;
  }

  // A click anywhere on an activity row opens its explanation.
  function rowsOpen(root) {
    root.addEventListener('click', function (e) {
      if (e.target.closest('a, button, input, select, textarea')) return;
      const tr = e.target.closest('tr[data-seq]');
      if (tr) window.location.href = '/ui/activity/' + encodeURIComponent(tr.dataset.seq);
    });
  }

  function activity() {
    const tbody = document.getElementById('rows');
    if (!tbody) return;
    rowsOpen(tbody);
    if (!window.EventSource) return;
    const q = tbody.dataset.query;
    const url = '/v1/activity/stream?after=' + encodeURIComponent(tbody.dataset.lastSeq || '0') + (q ? '&' + q : '');
    // EventSource reconnects by itself and resumes from the last row id it saw.
    const es = new EventSource(url);
    const live = document.getElementById('live');
    es.onopen = function () { if (live) live.hidden = false; };
    es.onerror = function () { if (live) live.hidden = true; };
    es.addEventListener('row', function (ev) {
      let r;
      try { r = JSON.parse(ev.data); } catch (_) { return; }
      if (tbody.querySelector('tr[data-seq="' + Number(r.seq) + '"]')) return;
      tbody.insertBefore(rowOf(r), tbody.firstChild);
      const none = document.getElementById('no-rows');
      if (none) none.hidden = true;
      while (tbody.children.length > 500) tbody.removeChild(tbody.lastChild);
    });
  }

  async function getJson(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(String(r.status));
    return r.json();
  }

  // New pending approvals appear, decided ones leave, without a reload (and without touching a
  // reason someone is typing into another approval).
  function approvals() {
    const list = document.getElementById('pending');
    if (!list) return;
    let busy = false;
    async function refresh() {
      if (busy) return;
      busy = true;
      try {
        const ids = (await getJson('/v1/approvals?state=pending')).approvals.map(function (a) { return a.id; });
        const shown = Array.from(list.querySelectorAll('[data-approval-id]')).map(function (e) { return e.dataset.approvalId; });
        if (ids.length === shown.length && ids.every(function (id) { return shown.indexOf(id) >= 0; })) return;
        const r = await fetch('/ui/approvals?fragment=pending', { credentials: 'same-origin' });
        if (!r.ok) return;
        const tpl = document.createElement('template');
        tpl.innerHTML = await r.text();
        const fresh = Array.from(tpl.content.querySelectorAll('[data-approval-id]'));
        const freshIds = fresh.map(function (e) { return e.dataset.approvalId; });
        Array.from(list.querySelectorAll('[data-approval-id]')).forEach(function (e) {
          if (freshIds.indexOf(e.dataset.approvalId) < 0) e.remove();
        });
        fresh.reverse().forEach(function (e) {
          const there = Array.from(list.querySelectorAll('[data-approval-id]')).some(function (x) { return x.dataset.approvalId === e.dataset.approvalId; });
          if (!there) {
            e.classList.add('new');
            list.insertBefore(e, list.firstChild);
          }
        });
        const n = list.querySelectorAll('[data-approval-id]').length;
        const count = document.getElementById('pending-count');
        if (count) count.textContent = String(n);
        const none = document.getElementById('none-pending');
        if (none) none.hidden = n > 0;
      } catch (_) {
        // The next tick tries again.
      } finally {
        busy = false;
      }
    }
    window.setInterval(refresh, 2000);
  }

  // One approval's page follows its state (someone else approves, it expires).
  function approval() {
    const card = document.querySelector('article.single[data-approval-id]');
    if (!card || card.dataset.state !== 'pending') return;
    const id = card.dataset.approvalId;
    const timer = window.setInterval(async function () {
      try {
        const a = await getJson('/v1/approvals/' + encodeURIComponent(id));
        const typing = Array.from(card.querySelectorAll('textarea')).some(function (t) { return t.value.trim() !== ''; });
        const votes = card.querySelector('.progress .count');
        if (votes && a.approvals) votes.textContent = a.approvals.length + '/' + a.required_count;
        if (a.state !== 'pending' && !typing) {
          window.clearInterval(timer);
          window.location.reload();
        }
      } catch (_) { /* try again */ }
    }, 3000);
  }

  document.addEventListener('DOMContentLoaded', function () {
    const page = document.body.dataset.page;
    if (page === 'activity') activity();
    if (page === 'approvals') { approvals(); approval(); }
    document.querySelectorAll('table.activity tbody').forEach(function (t) { if (t.id !== 'rows') rowsOpen(t); });
  });
})();
