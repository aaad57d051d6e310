// The rater page's script (page.ts inlines it into each page): shows one item at a time, records the two choices
// and the comment, keeps everything in localStorage on every change (a reload continues where the rater was), and
// exports the ratings as a JSON file (lib/human-eval/files.ts, RatingsFileSchema, is its format).
/* global document */
(() => {
  const study = JSON.parse(document.getElementById("study-data").textContent);
  const items = study.items;
  const storeKey = `dpsm-human-eval:${study.studyId}:${study.rater}`;
  const criteria = ["fluency", "informativeness"];
  const keys = { 1: ["fluency", "A"], 2: ["fluency", "tie"], 3: ["fluency", "B"] };
  Object.assign(keys, { 4: ["informativeness", "A"], 5: ["informativeness", "tie"], 6: ["informativeness", "B"] });
  const $ = (id) => document.getElementById(id);

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (saved && typeof saved === "object" && saved.answers) return saved;
    } catch {
      // a damaged entry: start again rather than fail
    }
    return { position: 0, answers: {}, finished: false };
  }
  const state = load();
  const save = () => localStorage.setItem(storeKey, JSON.stringify(state));

  const answer = (id) => (state.answers[id] ??= { fluency: null, informativeness: null, comment: "", ratedAt: null });
  const complete = (id) => criteria.every((c) => state.answers[id] && state.answers[id][c] !== null);
  const rated = () => items.filter((it) => complete(it.id)).length;

  function render() {
    document.body.classList.toggle("finished", state.finished);
    state.position = Math.min(Math.max(0, state.position), items.length - 1);
    const it = items[state.position];
    const a = state.answers[it.id];
    $("article").textContent = it.article;
    $("article").scrollTop = 0;
    $("summary-a").textContent = it.a;
    $("summary-b").textContent = it.b;
    for (const c of criteria) {
      for (const input of document.querySelectorAll(`input[name="${c}"]`)) input.checked = !!a && a[c] === input.value;
    }
    $("comment").value = a ? a.comment : "";
    $("position").textContent = `Item ${state.position + 1} of ${items.length} · ${rated()} rated`;
    $("bar").value = rated();
    $("previous").disabled = state.position === 0;
    $("next").disabled = !complete(it.id);
    $("next").textContent = state.position === items.length - 1 ? "Finish" : "Next →";
    $("status").textContent = complete(it.id) ? "" : "Choose for both questions to go on.";
  }

  function choose(criterion, value) {
    const a = answer(items[state.position].id);
    a[criterion] = value;
    a.ratedAt = new Date().toISOString();
    save();
    render();
  }

  function go(step) {
    if (step > 0 && !complete(items[state.position].id)) return;
    if (step > 0 && state.position === items.length - 1) {
      state.finished = rated() === items.length;
      if (!state.finished) state.position = items.findIndex((it) => !complete(it.id));
    } else state.position += step;
    save();
    render();
  }

  function exportRatings() {
    const ratings = items.filter((it) => state.answers[it.id]).map((it) => ({ item: it.id, ...state.answers[it.id] }));
    const file = {
      format: "dpsm-native human-eval ratings",
      version: 1,
      studyId: study.studyId,
      rater: study.rater,
      exportedAt: new Date().toISOString(),
      ratings,
    };
    const url = URL.createObjectURL(new Blob([JSON.stringify(file, null, 1)], { type: "application/json" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = `ratings-${study.studyId}-${study.rater}.json`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  for (const input of document.querySelectorAll(".choices input")) {
    input.addEventListener("change", () => choose(input.name, input.value));
  }
  $("comment").addEventListener("input", () => {
    answer(items[state.position].id).comment = $("comment").value;
    save();
  });
  $("previous").addEventListener("click", () => go(-1));
  $("next").addEventListener("click", () => go(1));
  $("export").addEventListener("click", exportRatings);
  $("export-done").addEventListener("click", exportRatings);
  $("review").addEventListener("click", () => {
    state.finished = false;
    state.position = 0;
    save();
    render();
  });
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target === $("comment")) {
      if (e.key === "Escape") $("comment").blur();
      return;
    }
    if (state.finished) return;
    if (keys[e.key]) {
      e.preventDefault();
      choose(...keys[e.key]);
    } else if (e.key === "Enter" || e.key === "ArrowRight") {
      e.preventDefault();
      go(1);
    } else if (e.key === "ArrowLeft") {
      e.preventDefault();
      go(-1);
    } else if (e.key === "c" || e.key === "C") {
      e.preventDefault();
      $("comment").focus();
    }
  });
  render();
})();
