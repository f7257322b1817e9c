// A single-page app behind `valet gateway`: it never sees a token. The gateway
// holds them and adds the access token to every /api call; the browser only
// has an HttpOnly cookie that scripts cannot read.

const show = (value) => {
  document.getElementById("out").textContent =
    typeof value === "string" ? value : JSON.stringify(value, null, 2);
};
const element = (id) => document.getElementById(id);
const button = element;

// State-changing calls carry X-Valet-CSRF: 1 (a cross-site form cannot send
// it); the gateway also checks that Origin is its own.
async function api(method, path, body) {
  const headers = { "X-Valet-CSRF": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (reply.status === 401) {
    await whoami();
    throw new Error("signed out");
  }
  const text = await reply.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function whoami() {
  const reply = await fetch("/bff/user", { credentials: "same-origin" });
  const signedIn = reply.ok;
  const user = signedIn ? await reply.json() : null;
  element("who").textContent = signedIn
    ? `Signed in as ${user.preferred_username || user.email || user.sub}`
    : "Not signed in";
  button("login").hidden = signedIn;
  for (const id of ["load", "create", "logout"]) button(id).hidden = !signedIn;
  return user;
}

button("login").addEventListener("click", () => {
  const returnTo = location.pathname + location.search;
  location.assign(`/bff/login?returnTo=${encodeURIComponent(returnTo)}`);
});
button("load").addEventListener("click", async () => {
  show(await api("GET", "/api/orders"));
});
button("create").addEventListener("click", async () => {
  show(await api("POST", "/api/orders", { item: "tea", quantity: 1 }));
});
button("logout").addEventListener("click", async () => {
  const { logout_url: logoutUrl } = await api("POST", "/bff/logout");
  // End the sign-in at Valet too (RP-initiated logout); it sends the browser back.
  if (logoutUrl) location.assign(logoutUrl);
  else await whoami();
});

whoami();
