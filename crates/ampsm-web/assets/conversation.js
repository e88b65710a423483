// The Conversation view. Pages work without this script (the server renders the conversation and a
// "Load earlier" link); with it:
// - entries streamed by /s/{id}/feed are added as they land, coalesced into one DOM update per animation
//   frame, and the page never holds more than MAX entries (the oldest go, and "Load earlier" brings them
//   back);
// - "Load earlier" fetches the page before without leaving this one;
// - the running iteration's clock ticks; its outcome, tokens and cost arrive with the page's live regions;
// - Send is disabled as soon as it is clicked (the server's live region brings it back when the run ends).
(function () {
  'use strict';
  var feed = document.getElementById('feed');
  if (!feed) return;
  var MAX = 1500;
  var cards = new Map();

  function fmt(ms) { return ms < 10000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s'; }
  function tick() {
    feed.querySelectorAll('header.it-head:not([data-ended]) .elapsed').forEach(function (el) {
      var h = el.closest('header');
      var started = +h.getAttribute('data-started');
      if (started) el.textContent = fmt(Math.max(0, Date.now() - started)) + ' so far';
    });
  }
  tick();
  setInterval(tick, 1000);

  function fragment(html) {
    var t = document.createElement('template');
    t.innerHTML = html;
    return t.content;
  }
  function nearBottom() { return feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80; }

  function sectionOf(it) {
    var key = it || '';
    var secs = feed.querySelectorAll('section.iteration');
    var last = secs[secs.length - 1];
    if (last && last.getAttribute('data-iteration') === key) return last.querySelector('.entries');
    var sec = document.createElement('section');
    sec.className = 'iteration';
    sec.setAttribute('data-iteration', key);
    if (it) {
      var h = document.createElement('header');
      h.className = 'it-head';
      h.id = 'it-' + it;
      h.setAttribute('data-live', '');
      h.setAttribute('data-started', String(Date.now()));
      h.innerHTML = '<div class="it-line"><b>New iteration</b> <span class="badge s-running">running</span>' +
        ' <span class="dim"><span class="elapsed"></span></span></div>';
      sec.appendChild(h);
    }
    var entries = document.createElement('div');
    entries.className = 'entries';
    sec.appendChild(entries);
    feed.appendChild(sec);
    return entries;
  }

  function findCard(call) {
    var c = cards.get(call);
    if (c && c.isConnected) return c;
    var list = feed.querySelectorAll('details.tool[data-call="' + CSS.escape(call) + '"]');
    return list.length ? list[list.length - 1] : null;
  }

  function apply(c) {
    if ((c.kind === 'result' || c.kind === 'denied') && c.call) {
      var card = findCard(c.call);
      if (card) {
        if (c.slot != null) card.querySelector('.result-slot').innerHTML = c.slot;
        if (c.badge != null) card.querySelector('.badge-slot').innerHTML = c.badge;
        return;
      }
    }
    if (c.replace) {
      var old = document.getElementById(c.replace);
      if (old) { old.replaceWith(fragment(c.html)); return; }
    }
    if (!c.html) return;
    var f = fragment(c.html);
    var el = f.firstElementChild;
    sectionOf(c.iteration).appendChild(f);
    if (el && c.kind === 'tool' && c.call) cards.set(c.call, el);
  }

  function setEarlier(before) {
    var p = document.getElementById('earlier');
    if (!p || !before) return;
    var sid = feed.getAttribute('data-session');
    p.innerHTML = '';
    var a = document.createElement('a');
    a.id = 'load-earlier';
    a.href = '/s/' + sid + '/interactive?before=' + before;
    a.setAttribute('data-before', String(before));
    a.textContent = 'Load earlier';
    p.appendChild(a);
  }

  // Keeps at most MAX entries: the oldest go, and "Load earlier" starts before the first one left.
  var live = feed.getElementsByClassName('entry');
  function trim() {
    if (live.length <= MAX) return;
    var items = Array.prototype.slice.call(live, 0, live.length - MAX);
    for (var i = 0; i < items.length; i++) items[i].remove();
    feed.querySelectorAll('section.iteration').forEach(function (s) {
      if (!s.querySelector('.entry') && s.nextElementSibling) s.remove();
    });
    var first = feed.querySelector('.entry');
    if (first) setEarlier(first.getAttribute('data-id'));
  }

  // A card that only adds an element (results and denials look for their call's card first).
  function plain(c) {
    return c.html && !c.replace && !((c.kind === 'result' || c.kind === 'denied') && c.call);
  }
  // Adds queue[i..] from one iteration as one parsed fragment (up to 100 cards); returns how many.
  function applyRun(list, i) {
    var c = list[i];
    if (!plain(c)) { apply(c); return 1; }
    var it = c.iteration, html = [], n = 0;
    while (i + n < list.length && n < 100 && list[i + n].iteration === it && plain(list[i + n])) {
      html.push(list[i + n].html);
      n++;
    }
    var f = fragment(html.join(''));
    var tools = f.querySelectorAll('details.tool[data-call]');
    for (var k = 0; k < tools.length; k++) cards.set(tools[k].getAttribute('data-call'), tools[k]);
    sectionOf(it).appendChild(f);
    return n;
  }

  // The queue is applied a few milliseconds per frame, so input is never kept waiting by a burst.
  var queue = [];
  var scheduled = false;
  var BUDGET_MS = 8;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    if (document.hidden) setTimeout(flush, 250); else requestAnimationFrame(flush);
  }
  function flush() {
    scheduled = false;
    var t0 = performance.now();
    var stick = nearBottom();
    var empty = feed.querySelector('.empty');
    if (empty && queue.length) empty.remove();
    var i = 0;
    while (i < queue.length && performance.now() - t0 < BUDGET_MS) i += applyRun(queue, i);
    queue = i >= queue.length ? [] : queue.slice(i);
    trim();
    if (stick) feed.scrollTop = feed.scrollHeight;
    if (queue.length) schedule();
  }
  function enqueue(list) {
    for (var i = 0; i < list.length; i++) queue.push(list[i]);
    if (queue.length > MAX * 2) {
      // More arrived than the page keeps (a hidden tab, a burst): start again from the newest ones.
      queue = queue.slice(queue.length - MAX);
      feed.querySelectorAll('section.iteration').forEach(function (s) { s.remove(); });
      cards.clear();
      var firstLine = queue.length ? queue[0].line : 0;
      if (firstLine) setEarlier(firstLine);
    }
    schedule();
  }

  var src = feed.getAttribute('data-src');
  var es = null;
  if (src && window.EventSource) {
    es = new EventSource(src + '?batch=1&after=' + (feed.getAttribute('data-after') || '0'));
    es.addEventListener('cards', function (m) {
      var d = JSON.parse(m.data);
      if (d.cards && d.cards.length) enqueue(d.cards);
    });
  }

  // "Load earlier": the page before, fetched as blocks and put on top, the reading position kept.
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest && ev.target.closest('#load-earlier');
    if (!a) return;
    ev.preventDefault();
    a.setAttribute('aria-busy', 'true');
    fetch(a.href + '&fragment=1', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('the earlier page could not be loaded (HTTP ' + r.status + ')');
      return r.text();
    }).then(function (text) {
      var f = fragment(text);
      var fromBottom = feed.scrollHeight - feed.scrollTop;
      var newEarlier = f.querySelector('#earlier');
      var p = document.getElementById('earlier');
      if (newEarlier && p) p.replaceWith(newEarlier);
      var secs = Array.prototype.slice.call(f.querySelectorAll('section.iteration'));
      var first = feed.querySelector('section.iteration');
      var lastNew = secs[secs.length - 1];
      if (first && lastNew && lastNew.getAttribute('data-iteration') === first.getAttribute('data-iteration')) {
        var into = first.querySelector('.entries');
        var moved = lastNew.querySelector('.entries');
        while (moved && moved.lastChild) into.insertBefore(moved.lastChild, into.firstChild);
        var head = lastNew.querySelector('header.it-head');
        if (head && !first.querySelector('header.it-head')) first.insertBefore(head, first.firstChild);
        secs.pop();
      }
      secs.forEach(function (s) { feed.insertBefore(s, first); });
      // Over the bound now: the newest go instead, and the live stream stops (the page is history).
      var items = feed.querySelectorAll('.entry');
      if (items.length > MAX) {
        for (var i = MAX; i < items.length; i++) items[i].remove();
        if (es) { es.close(); es = null; }
        var back = document.getElementById('back-latest');
        if (!back) {
          back = document.createElement('p');
          back.id = 'back-latest';
          back.innerHTML = '<a href="/s/' + feed.getAttribute('data-session') + '/interactive">Back to the latest</a>';
          feed.after(back);
        }
      }
      feed.scrollTop = feed.scrollHeight - fromBottom;
    }).catch(function (e) {
      var p = document.getElementById('earlier');
      if (p) p.textContent = e.message;
    });
  });

  // Send: disabled at once (a second click would be refused while the run goes).
  document.addEventListener('submit', function (ev) {
    if (ev.target && ev.target.id === 'message-form') {
      var b = document.getElementById('send');
      if (b) setTimeout(function () { b.disabled = true; }, 0);
    }
  });

  feed.scrollTop = feed.scrollHeight;
})();
