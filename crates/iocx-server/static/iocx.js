// iocx console: the few interactions that change something go through the JSON API with the
// session's CSRF token; everything else is plain links and forms.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  async function api(method, path, body) {
    const r = await fetch("/api/v1" + path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) {
      const err = new Error(data?.error?.message || r.statusText);
      err.field = data?.error?.field;
      throw err;
    }
    return data;
  }
  document.getElementById("logout")?.addEventListener("click", async () => {
    try { await api("POST", "/auth/logout"); } finally { location.href = "/ui/login"; }
  });
  const actions = document.querySelector(".actions");
  if (actions) {
    const status = actions.querySelector(".status");
    actions.addEventListener("click", async (e) => {
      const action = e.target?.dataset?.action;
      if (!action) return;
      const tag = actions.querySelector("#tag").value.trim();
      const body = { action, ids: [Number(actions.dataset.id)] };
      if (action === "tag" || action === "untag") body.tags = [tag];
      try {
        await api("POST", "/indicators/actions", body);
        location.reload();
      } catch (err) {
        status.textContent = err.message;
        status.className = "status error";
      }
    });
  }
  // Configurations: test and run now.
  document.querySelectorAll(".row-actions").forEach((cell) => {
    const status = cell.querySelector(".status");
    cell.addEventListener("click", async (e) => {
      const action = e.target?.dataset?.configAction;
      if (!action) return;
      status.textContent = "…";
      try {
        const r = await api("POST", `/configurations/${encodeURIComponent(cell.dataset.name)}/${action}`, {});
        status.textContent = action === "test" ? (r.ok ? "OK — " : "Failed — ") + r.message : "Started";
      } catch (err) { status.textContent = err.message; }
    });
  });
  // Rules: live preview.
  const form = document.getElementById("preview");
  if (form) {
    const out = document.getElementById("preview-result");
    const sample = document.getElementById("preview-sample");
    let timer;
    const run = async () => {
      const expression = form.expression.value.trim();
      if (!expression) { out.textContent = ""; sample.replaceChildren(); return; }
      try {
        const r = await api("POST", "/rules/preview", { expression, sample: 10 });
        out.textContent = `${r.count} indicators match (${(r.seconds * 1000).toFixed(0)} ms): ${r.expression}`;
        out.className = "";
        sample.replaceChildren(...r.sample.map((i) => {
          const li = document.createElement("li");
          li.textContent = `${i.kind} ${i.value} (${i.severity})`;
          return li;
        }));
      } catch (err) { out.textContent = err.message; out.className = "error"; sample.replaceChildren(); }
    };
    form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
    form.expression.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 400); });
  }
  // Sharing: Fetch shows how many, Sync sends them.
  document.querySelectorAll(".sync").forEach((cell) => {
    const status = cell.querySelector(".status");
    const send = cell.querySelector('[data-sync="send"]');
    cell.addEventListener("click", async (e) => {
      const step = e.target?.dataset?.sync;
      if (!step) return;
      const value = cell.querySelector("select").value;
      const body = value ? { days: Number(value) } : {};
      if (step === "send") body.send = true;
      status.textContent = "…";
      try {
        const r = await api("POST", `/sharings/${encodeURIComponent(cell.dataset.name)}/sync`, body);
        if (step === "fetch") { status.textContent = `${r.to_send} to send`; send.disabled = r.to_send === 0; }
        else { status.textContent = `Sending ${r.to_send} — see Runs and logs`; send.disabled = true; }
      } catch (err) { status.textContent = err.message; }
    });
  });
  // Settings: generate (shown once) and revoke tokens.
  const tokenForm = document.getElementById("new-token");
  tokenForm?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const shown = document.getElementById("token-shown");
    try {
      const days = Number(document.getElementById("token-days").value);
      const r = await api("POST", "/tokens", { name: document.getElementById("token-name").value, expires_in_days: days || null });
      shown.textContent = `Your new token (shown once, copy it now): ${r.token}`;
    } catch (err) { shown.textContent = err.message; }
  });
  document.querySelectorAll("[data-revoke]").forEach((b) => b.addEventListener("click", async () => {
    try { await api("DELETE", `/tokens/${b.dataset.revoke}`); location.reload(); } catch (err) { b.textContent = err.message; }
  }));
  // Configurations: the form generated from the connector's spec.
  const config = document.getElementById("config-form");
  config?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {}, secrets = {}, unset = [];
    config.querySelectorAll(".field").forEach((f) => {
      f.querySelector(".field-error") && (f.querySelector(".field-error").textContent = "");
      f.querySelectorAll("input, select, textarea").forEach((i) => i.removeAttribute("aria-invalid"));
    });
    config.querySelectorAll(".field[data-key]").forEach((f) => {
      const key = f.dataset.key, kind = f.dataset.kind;
      if (kind === "boolean") { values[key] = f.querySelector("input").checked; return; }
      if (kind === "multi_choice") { values[key] = [...f.querySelectorAll("input:checked")].map((i) => i.value); return; }
      const v = f.querySelector("input, select, textarea").value;
      if (kind === "secret") { if (v !== "") secrets[key] = v; return; }
      if (v === "") { if (config.dataset.editing === "true") unset.push(key); return; }
      values[key] = kind === "number" ? Number(v) : v;
    });
    const body = {
      values, secrets,
      enabled: document.getElementById("p-enabled").checked,
      interval_secs: Number(document.getElementById("p-interval").value) * 60,
      initial_range_days: Number(document.getElementById("p-range").value),
      aging_days: Number(document.getElementById("p-aging").value),
      verify_tls: document.getElementById("p-tls").checked,
    };
    const editing = config.dataset.editing === "true";
    if (editing) body.unset = unset; else { body.name = document.getElementById("f-name").value; body.connector = config.dataset.connector; }
    try {
      if (editing) await api("PATCH", `/configurations/${encodeURIComponent(config.dataset.name)}`, body);
      else await api("POST", "/configurations", body);
      location.href = "/ui/configurations";
    } catch (err) {
      document.getElementById("form-error").textContent = err.message;
      const field = err.field?.replace(/^params\./, "");
      const box = field && (config.querySelector(`.field[data-key="${field}"]`) || config.querySelector(`.field[data-platform="${field}"]`));
      if (box) {
        box.querySelector(".field-error").textContent = err.message;
        box.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
        box.querySelector("input, select, textarea")?.focus();
      }
    }
  });
  // Rules: save the previewed expression.
  document.getElementById("save-rule")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = document.getElementById("save-status");
    try {
      await api("POST", "/rules", { name: document.getElementById("rule-name").value, expression: document.getElementById("expression").value });
      location.reload();
    } catch (err) { status.textContent = err.message; status.className = "status error"; }
  });
  // Sharing: create.
  document.getElementById("new-sharing")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const [destination, target] = document.getElementById("s-target").value.split("|");
    const body = {
      name: document.getElementById("s-name").value,
      sources: [...document.getElementById("s-sources").selectedOptions].map((o) => o.value),
      rule: document.getElementById("s-rule").value,
      destination, target,
      enabled: document.getElementById("s-enabled").checked,
    };
    try { await api("POST", "/sharings", body); location.reload(); }
    catch (err) { document.getElementById("sharing-error").textContent = err.message; }
  });
})();
