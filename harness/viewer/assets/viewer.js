/* sppo-bench viewer: filters, search and paging for an item browser page, and record links on the overview.
 * The first page of items is already in the HTML; after the first paint this script loads the page's data file
 * (all items) and takes over. Answers arrive as HTML that markdown-it rendered with raw HTML disabled; every other
 * field is set as text. Rows built here have the same structure as the template's (row.html.j2). */
(function () {
  "use strict";

  function openRecordFromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }

  var table = document.getElementById("items");
  if (!table) {
    window.addEventListener("hashchange", openRecordFromHash);
    openRecordFromHash();
    return;
  }

  var tbody = document.getElementById("rows");
  var status = document.getElementById("status");
  var pager = document.getElementById("pager");
  var empty = document.getElementById("empty");
  var controls = {
    changed: document.getElementById("f-changed"),
    sort: document.getElementById("f-sort"),
    subtask: document.getElementById("f-subtask"),
    q: document.getElementById("f-search")
  };
  var state = readHash();
  var data = null;
  var searchText = null;

  highlight(state.ckpt);
  window.addEventListener("hashchange", function () {
    state = readHash();
    if (data) { syncControls(); render(false); } else { highlight(state.ckpt); }
  });
  requestAnimationFrame(function () { setTimeout(loadData, 0); });

  function loadData() {
    var script = document.createElement("script");
    script.src = table.dataset.src;
    script.onload = function () { data = window.SPPO_VIEWER_DATA; ready(); };
    script.onerror = function () { status.textContent = "could not load " + table.dataset.src + "; only the first page is shown"; };
    document.head.appendChild(script);
  }

  function ready() {
    Object.keys(controls).forEach(function (name) {
      var el = controls[name];
      if (!el) { return; }
      el.disabled = false;
      if (name === "changed") { el.checked = state.changed; } else { el.value = state[name]; }
      el.addEventListener(name === "q" ? "input" : "change", function () {
        state[name] = name === "changed" ? el.checked : el.value;
        state.page = 1;
        state.item = "";
        render(true);
      });
    });
    render(false);
    document.documentElement.dataset.ready = String(performance.now());
  }

  function syncControls() {
    if (controls.changed) { controls.changed.checked = state.changed; }
    ["sort", "subtask", "q"].forEach(function (n) { if (controls[n]) { controls[n].value = state[n]; } });
  }

  function readHash() {
    var s = { page: 1, changed: false, sort: "id", subtask: "", q: "", ckpt: "", item: "" };
    location.hash.slice(1).split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) { return; }
      var v = decodeURIComponent(kv[1].replace(/\+/g, " "));
      if (kv[0] === "page") { s.page = Math.max(1, parseInt(v, 10) || 1); }
      else if (kv[0] === "changed") { s.changed = v === "1"; }
      else if (kv[0] in s) { s[kv[0]] = v; }
    });
    return s;
  }

  function writeHash() {
    var parts = [];
    if (state.item) { parts.push("item=" + encodeURIComponent(state.item)); }
    if (state.ckpt) { parts.push("ckpt=" + encodeURIComponent(state.ckpt)); }
    if (state.subtask) { parts.push("subtask=" + encodeURIComponent(state.subtask)); }
    if (state.changed) { parts.push("changed=1"); }
    if (state.sort !== "id") { parts.push("sort=" + state.sort); }
    if (state.q) { parts.push("q=" + encodeURIComponent(state.q)); }
    if (state.page > 1) { parts.push("page=" + state.page); }
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
  }

  function matches() {
    var q = state.q.trim().toLowerCase();
    if (q && !searchText) { searchText = data.items.map(indexText); }
    var out = [];
    data.items.forEach(function (it, i) {
      if (state.item && it.key !== state.item) { return; }
      if (state.subtask && it.subtask !== state.subtask) { return; }
      if (state.changed && !it.changed) { return; }
      if (q && searchText[i].indexOf(q) < 0) { return; }
      out.push(it);
    });
    if (state.sort === "length") {
      out.sort(function (a, b) { return (b.length_change === null ? -1 : b.length_change) - (a.length_change === null ? -1 : a.length_change); });
    }
    return out;
  }

  function indexText(it) {
    var parts = [it.key, it.prompt || ""];
    it.cells.forEach(function (c) { if (c) { parts.push(textOf(c.answer_html), c.target || "", c.extracted || ""); } });
    return parts.join("\n").toLowerCase();
  }

  function textOf(html) {
    if (!html) { return ""; }
    return html.replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"")
      .replace(/&#39;/g, "'").replace(/&amp;/g, "&");
  }

  function render(updateHash) {
    var found = matches();
    var size = data.pageSize;
    var pages = Math.max(1, Math.ceil(found.length / size));
    state.page = Math.min(state.page, pages);
    var start = (state.page - 1) * size;
    var shown = found.slice(start, start + size);
    tbody.replaceChildren.apply(tbody, shown.map(row));
    empty.hidden = found.length > 0;
    status.textContent = found.length ? "items " + (start + 1) + "–" + (start + shown.length) + " of " + found.length +
      (found.length < data.items.length ? " matching (" + data.items.length + " in all)" : "") : "no items match";
    renderPager(pages);
    highlight(state.ckpt);
    if (updateHash) { writeHash(); }
  }

  function renderPager(pages) {
    var nodes = [];
    function button(label, page, current) {
      var b = el("button", current ? "current" : "", label);
      b.type = "button";
      b.disabled = current || page < 1 || page > pages;
      b.addEventListener("click", function () { state.page = page; render(true); table.scrollIntoView(); });
      return b;
    }
    if (pages > 1) {
      nodes.push(button("‹ previous", state.page - 1, false));
      nodes.push(el("span", "pages", "page " + state.page + " of " + pages));
      nodes.push(button("next ›", state.page + 1, false));
    }
    pager.replaceChildren.apply(pager, nodes);
  }

  function highlight(slug) {
    table.querySelectorAll("[data-ckpt]").forEach(function (cell) {
      cell.classList.toggle("hl", !!slug && cell.dataset.ckpt === slug);
    });
  }

  function row(it) {
    var tr = el("tr", it.changed ? "changed" : "");
    tr.dataset.key = it.key;
    var th = el("th", "prompt");
    th.scope = "row";
    var a = el("a", "item-id", it.key);
    a.href = "#item=" + encodeURIComponent(it.key);
    th.appendChild(a);
    if (it.length_change !== null) { th.appendChild(el("span", "delta", "length change " + it.length_change)); }
    if (it.prompt_omitted) { th.appendChild(el("span", "omitted", "… " + it.prompt_omitted + " earlier characters not shown")); }
    if (it.prompt !== null) { th.appendChild(el("div", "prompt-text", it.prompt)); }
    tr.appendChild(th);
    it.cells.forEach(function (c, i) { tr.appendChild(cell(c, data.checkpoints[i])); });
    return tr;
  }

  function cell(c, slug) {
    var td = el("td", "");
    td.dataset.ckpt = slug;
    if (c === null) {
      td.appendChild(el("p", "missing", "no row: generation failed or the verdict was unreadable (see coverage)"));
      return td;
    }
    var verdict = el("div", "verdict");
    if (c.verdict !== null) { verdict.appendChild(el("span", "badge " + c.tone, c.verdict)); }
    if (c.length !== null) { verdict.appendChild(el("span", "len", "length " + c.length)); }
    td.appendChild(verdict);
    c.details.forEach(function (d) { td.appendChild(el("div", "detail", d)); });
    if (c.target !== null) { td.appendChild(labelled("target", "target", c.target)); }
    if (c.extracted !== null) { td.appendChild(labelled("extracted", "extracted", c.extracted)); }
    if (c.answer_html !== null) { td.appendChild(html("div", "answer", c.answer_html)); }
    if (c.judgment_html !== null) {
      var details = el("details", "judgment");
      details.appendChild(el("summary", "", "judgment"));
      details.insertAdjacentHTML("beforeend", c.judgment_html);
      td.appendChild(details);
    }
    return td;
  }

  function labelled(cls, label, value) {
    var div = el("div", cls, label + " ");
    div.appendChild(el("code", "", value));
    return div;
  }

  function html(tag, cls, markup) {
    var node = el(tag, cls);
    node.innerHTML = markup; // markdown-it output, raw HTML disabled at build time
    return node;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
}());
