// bestofl-report browse: the page's only script (inlined into index.html, allowed by its hash).
// Data comes from <script type="application/json" id="bestofl-data"> and is written with textContent only:
// candidate texts, questions and ids never become markup.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("bestofl-data").textContent);
  // candidate fields (browse.py): [lang index, sample_idx, text, answer, score, scored, correct, votes]
  const LANG = 0, IDX = 1, TEXT = 2, ANSWER = 3, SCORE = 4, SCORED = 5, CORRECT = 6, VOTES = 7;
  const SHOWN = 400; // list rows drawn at once ("show more" draws the rest)

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  const pct = (right, total) => total ? (100 * right / total).toFixed(1) + "%" : "–";
  const langName = (code) => (D.names[code] || code) + " (" + code + ")";
  const routeOf = (entry) => "#" + encodeURIComponent(entry.task) + "/" + encodeURIComponent(String(entry.doc));

  // ------------------------------------------------------------------ per-entry facts for the filters
  const methodIndex = Object.fromEntries(D.methods.map((m, i) => [m, i]));
  const targetOnly = {};
  for (const m of D.methods) targetOnly[m] = D.target_only.includes(m);
  const byProblem = D.problems.map(() => []);
  D.entries.forEach((e, i) => byProblem[e.p].push(i));
  function anyRight(entry, method) {
    const cands = D.problems[entry.p].cands;
    const target = D.languages.indexOf(entry.t);
    for (const c of cands) if (c[CORRECT] && (!targetOnly[method] || c[LANG] === target)) return true;
    return false;
  }
  const searchText = [];
  function haystack(p) {
    if (searchText[p] === undefined) {
      const prob = D.problems[p];
      searchText[p] = [prob.id, ...Object.values(prob.questions || {}).filter(Boolean)].join("\n").toLowerCase();
    }
    return searchText[p];
  }

  // ------------------------------------------------------------------ layout
  const state = { method: D.method, target: "", outcome: "", lang: "", query: "", current: -1, shown: SHOWN };
  const header = el("header");
  const filters = el("div", { class: "filters", id: "filters" });
  const list = el("nav", { id: "list", "aria-label": "problems" });
  const view = el("section", { id: "view" });
  document.body.append(header, filters, el("main", null, list, view));

  function overview() {
    const counts = D.counts;
    header.append(el("h1", { text: "bestofl run: " + D.generator.label }));
    const facts = el("dl", { class: "facts" },
      el("dt", { text: "Counts" }),
      el("dd", { id: "counts", text: counts.problems + " problems, " + counts.entries + " problem × target language pairs, " +
        counts.candidates + " candidates, " + D.languages.length + " languages (" + D.languages.join(", ") + "), " +
        D.targets.length + " target languages (" + D.targets.join(", ") + ")" }),
      el("dt", { text: "Generator" }), el("dd", { text: D.generator.label + " — id " + D.generator.id }),
      el("dd", { class: "muted", text: D.generator.identity ? JSON.stringify(D.generator.identity) : "(no identity recorded)" }),
      el("dt", { text: "Verifier" }),
      el("dd", { text: D.verifier ? D.verifier.label + " — id " + D.verifier.id : "none (the store holds no scores)" }),
      D.verifier ? el("dd", { class: "muted", text: D.verifier.identity ? JSON.stringify(D.verifier.identity) : "(no identity recorded)" }) : null,
      el("dt", { text: "Sampling settings" }), el("dd", { text: JSON.stringify(D.settings) }),
      el("dt", { text: "Stores" }), el("dd", { text: D.stores.join(", ") }));
    const table = el("table", { id: "accuracy" });
    const head = el("tr", null, el("th", { text: "method (pick over every stored candidate)" }),
      ...D.targets.map((t) => el("th", { text: t, title: D.names[t] || t })), el("th", { text: "all" }));
    table.append(head);
    for (const m of D.methods) {
      const row = el("tr", null, el("td", { text: m, title: D.summaries[m] }));
      let right = 0, total = 0;
      for (const t of D.targets) {
        const cell = (D.accuracy[m] || {})[t];
        row.append(el("td", { text: cell ? pct(cell[0], cell[1]) : "–", title: cell ? cell[0] + " / " + cell[1] : "" }));
        if (cell) { right += cell[0]; total += cell[1]; }
      }
      row.append(el("td", { text: pct(right, total), title: right + " / " + total }));
      table.append(row);
    }
    const left = el("div", null, facts, el("h2", { text: "Accuracy per method and target language" }), table);
    const box = el("div", { class: "overview" }, left);
    if (D.curve) {
      const img = el("img", { alt: "accuracy vs budget (bestofl-report's plot)" });
      img.src = D.curve;
      box.append(img);
    }
    header.append(box);
    if (D.notes.length) header.append(el("ul", { class: "notes" }, ...D.notes.map((n) => el("li", { text: n }))));
    header.append(el("div", { class: "keys", text: "Keys: → or j next problem, ← or k previous (in the filtered list). " +
      "Link to a problem: index.html#TASK/DOC_ID." }));
  }

  function select(id, label, options, value, onChange) {
    const box = el("select", { id: id });
    for (const [v, text] of options) {
      const option = el("option", { value: v, text: text });
      if (v === value) option.selected = true;
      box.append(option);
    }
    box.addEventListener("change", () => onChange(box.value));
    return el("label", null, label, box);
  }

  function drawFilters() {
    const refresh = () => { state.shown = SHOWN; drawList(); };
    filters.append(
      select("f-method", "method", D.methods.map((m) => [m, m]), state.method, (v) => { state.method = v; refresh(); drawView(); }),
      select("f-target", "target", [["", "all"], ...D.targets.map((t) => [t, langName(t)])], "", (v) => { state.target = v; refresh(); }),
      select("f-outcome", "pick", [["", "all"], ["right", "right"], ["wrong", "wrong"],
        ["missed", "wrong, though a candidate was right"], ["none", "no pick"]], "", (v) => { state.outcome = v; refresh(); }),
      select("f-lang", "picked language", [["", "any"], ...D.languages.map((l) => [l, langName(l)])], "", (v) => { state.lang = v; refresh(); }));
    const search = el("input", { type: "search", id: "f-query", placeholder: "search questions and ids" });
    search.addEventListener("input", () => { state.query = search.value.trim().toLowerCase(); refresh(); });
    filters.append(search, el("span", null, el("strong", { id: "count" }), " of " + D.entries.length + " shown"));
  }

  function matches(i) {
    const entry = D.entries[i];
    if (state.target && entry.t !== state.target) return false;
    const pick = entry.picks[methodIndex[state.method]];
    const cand = pick >= 0 ? D.problems[entry.p].cands[pick] : null;
    if (state.outcome === "none" && cand) return false;
    if (state.outcome && state.outcome !== "none") {
      if (!cand) return false;
      if (state.outcome === "right" && !cand[CORRECT]) return false;
      if (state.outcome === "wrong" && cand[CORRECT]) return false;
      if (state.outcome === "missed" && (cand[CORRECT] || !anyRight(entry, state.method))) return false;
    }
    if (state.lang && (!cand || D.languages[cand[LANG]] !== state.lang)) return false;
    if (state.query && !haystack(entry.p).includes(state.query)) return false;
    return true;
  }

  let filtered = [];
  function drawList() {
    filtered = [];
    for (let i = 0; i < D.entries.length; i++) if (matches(i)) filtered.push(i);
    document.getElementById("count").textContent = String(filtered.length);
    const frag = document.createDocumentFragment();
    const m = methodIndex[state.method];
    for (const i of filtered.slice(0, state.shown)) {
      const entry = D.entries[i], prob = D.problems[entry.p];
      const pick = entry.picks[m], cand = pick >= 0 ? prob.cands[pick] : null;
      const mark = cand ? (cand[CORRECT] ? el("span", { class: "ok", text: "✓" }) : el("span", { class: "bad", text: "✗" }))
        : el("span", { class: "muted", text: "–" });
      const link = el("a", { href: routeOf(entry), "data-entry": String(i), class: i === state.current ? "current" : "" },
        el("span", { text: prob.id + " · " + entry.t }), el("span", { class: "muted", text: cand && cand[ANSWER] !== null ? String(cand[ANSWER]) : "" }), mark);
      frag.append(link);
    }
    if (filtered.length > state.shown) {
      const more = el("button", { class: "more", id: "more", text: "show " + (filtered.length - state.shown) + " more" });
      more.addEventListener("click", () => { state.shown = Infinity; drawList(); });
      frag.append(more);
    }
    list.replaceChildren(frag);
  }

  // ------------------------------------------------------------------ one problem
  function drawView() {
    if (state.current < 0) {
      view.replaceChildren(el("p", { class: "muted", text: "Pick a problem on the left (or press →)." }));
      return;
    }
    const entry = D.entries[state.current], prob = D.problems[entry.p];
    const m = methodIndex[state.method];
    const pick = entry.picks[m];
    const parts = [];
    parts.push(el("h2", { id: "problem-title", text: prob.id + " — " + entry.task + " / doc " + entry.doc + " — target " + langName(entry.t) }));
    const pickCand = pick >= 0 ? prob.cands[pick] : null;
    parts.push(el("p", null, el("span", { class: "badge gold", text: "gold" }), " " + (prob.gold === null ? "unknown" : prob.gold) + "   ",
      el("span", { class: "badge", text: state.method }), " picks ",
      pickCand ? el("span", { class: pickCand[CORRECT] ? "ok" : "bad", id: "pick-answer",
        text: (pickCand[ANSWER] === null ? "no answer" : pickCand[ANSWER]) + " (" + D.languages[pickCand[LANG]] + " #" + pickCand[IDX] + ", " +
          (pickCand[CORRECT] ? "right" : "wrong") + ")" }) : el("span", { class: "muted", text: "nothing (no eligible candidate)" })));
    const others = byProblem[entry.p];
    parts.push(el("div", { class: "targets" }, "target languages: ", ...others.map((i) => el("a", {
      href: routeOf(D.entries[i]), class: i === state.current ? "current" : "", text: D.entries[i].t }))));
    parts.push(el("h3", { text: "Question" }));
    const qs = prob.questions || {};
    const codes = [entry.t, ...D.languages.filter((l) => l !== entry.t)];
    for (const code of codes) if (qs[code]) parts.push(el("div", { class: "question", lang: code }, el("span", { class: "code", text: code }), qs[code]));
    if (prob.missing) parts.push(el("p", { class: "muted", id: "missing", text: "Questions missing: " + prob.missing + "." }));
    // which methods picked each candidate
    const pickedBy = {};
    D.methods.forEach((name, k) => { const x = entry.picks[k]; if (x >= 0) (pickedBy[x] = pickedBy[x] || []).push(name); });
    const total = prob.cands.length;
    for (let l = 0; l < D.languages.length; l++) {
      const members = [];
      prob.cands.forEach((c, x) => { if (c[LANG] === l) members.push(x); });
      if (!members.length) continue;
      const right = members.filter((x) => prob.cands[x][CORRECT]).length;
      const section = el("section", { class: "lang", "data-lang": D.languages[l] },
        el("h3", { text: langName(D.languages[l]) + " — " + members.length + " candidates, " + right + " right" }));
      for (const x of members) {
        const c = prob.cands[x];
        const classes = ["cand", c[CORRECT] ? "right" : "wrong"];
        if (x === pick) classes.push("pick");
        const score = c[SCORE] === null ? (c[SCORED] ? "no number" : (D.verifier ? "not scored" : "–")) : c[SCORE].toFixed(4);
        const meta = el("div", { class: "meta" },
          el("span", { text: "#" + c[IDX] }),
          el("span", null, "answer ", el("strong", { text: c[ANSWER] === null ? "none" : String(c[ANSWER]) })),
          el("span", { text: "score " + score }),
          el("span", { text: "votes " + c[VOTES] + " of " + total }),
          c[CORRECT] ? el("span", { class: "ok", text: "right" }) : el("span", { class: "bad", text: "wrong" }),
          pickedBy[x] ? el("span", { class: "badge", text: "picked by " + pickedBy[x].join(", ") }) : null);
        section.append(el("div", { class: classes.join(" "), "data-cand": String(x), lang: D.languages[l] }, meta,
          el("pre", { class: "text", text: c[TEXT] })));
      }
      parts.push(section);
    }
    view.replaceChildren(...parts);
    for (const a of list.querySelectorAll("a.current")) a.classList.remove("current");
    const row = list.querySelector('a[data-entry="' + state.current + '"]');
    if (row) { row.classList.add("current"); row.scrollIntoView({ block: "nearest" }); }
  }

  function open(i) {
    state.current = i;
    drawView();
    window.scrollTo(0, 0);
  }

  function fromHash() {
    const hash = location.hash.slice(1);
    if (!hash) return;
    const slash = hash.indexOf("/");
    let route = hash;
    try {
      route = slash < 0 ? decodeURIComponent(hash) : decodeURIComponent(hash.slice(0, slash)) + "/" + decodeURIComponent(hash.slice(slash + 1));
    } catch (e) { /* a malformed escape: look it up as written */ }
    const i = Object.prototype.hasOwnProperty.call(D.routes, route) ? D.routes[route] : -1;
    if (i >= 0) open(i);
    else view.replaceChildren(el("p", { class: "bad", text: "No problem " + route + " in this run." }));
  }

  function step(delta) {
    if (!filtered.length) return;
    let at = filtered.indexOf(state.current);
    at = at < 0 ? (delta > 0 ? 0 : filtered.length - 1) : Math.min(filtered.length - 1, Math.max(0, at + delta));
    if (at >= state.shown) { state.shown = Infinity; drawList(); }
    location.hash = routeOf(D.entries[filtered[at]]);
  }

  document.addEventListener("keydown", (event) => {
    const tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowRight" || event.key === "j") { step(1); event.preventDefault(); }
    else if (event.key === "ArrowLeft" || event.key === "k") { step(-1); event.preventDefault(); }
  });
  window.addEventListener("hashchange", fromHash);

  overview();
  drawFilters();
  drawList();
  drawView();
  fromHash();
  document.body.setAttribute("data-ready", "1");
})();
