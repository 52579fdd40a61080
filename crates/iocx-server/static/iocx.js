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
    if (!r.ok) throw new Error(data?.error?.message || r.statusText);
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
})();
