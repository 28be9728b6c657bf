// The wallet the portal signs with: the injected one (window.ethereum, EIP-1193), or on the local
// chain the development wallet, which forwards each request to this server's /dev-wallet (dev keys
// only, chain 31337 only). The chosen account is kept for the browser tab in sessionStorage.
(function () {
  "use strict";
  const KEY = "devicemint.wallet";

  function devWallet(address) {
    return {
      dev: true,
      async request({ method, params }) {
        const response = await fetch("/dev-wallet", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ address, method, params: params || [] }),
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.detail || `the development wallet refused ${method}`);
        return body.result;
      },
    };
  }

  function provider() {
    const chosen = sessionStorage.getItem(KEY);
    if (chosen && chosen !== "injected" && document.body.dataset.devChain === "true") return devWallet(chosen);
    if (window.ethereum) return window.ethereum;
    throw new Error("no wallet found: install a browser wallet (or, on the local chain, use the development sign-in)");
  }

  function utf8Hex(text) {
    return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = response.status === 204 ? {} : await response.json();
    if (!response.ok) throw new Error(answer.detail || `${url} answered ${response.status}`);
    return answer;
  }

  async function signIn(choice, next) {
    if (choice !== "injected") sessionStorage.setItem(KEY, choice);
    else sessionStorage.setItem(KEY, "injected");
    const wallet = provider();
    const [account] = await wallet.request({ method: "eth_requestAccounts" });
    const { message } = await postJSON("/sign-in/message", { address: account });
    const signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(message), account] });
    await postJSON("/auth/sign-in", { message, signature });
    window.location.assign(next || "/portal");
  }

  async function account() {
    const [first] = await provider().request({ method: "eth_requestAccounts" });
    return first;
  }

  // Sign EIP-712 typed data with the wallet: `data` as the server gave it.
  async function signTypedData(data) {
    const from = await account();
    return provider().request({ method: "eth_signTypedData_v4", params: [from, JSON.stringify(data)] });
  }

  // Send a transaction the server prepared ({to, data}); resolves to its hash once sent.
  async function sendTransaction(tx) {
    const from = await account();
    return provider().request({ method: "eth_sendTransaction", params: [{ from, to: tx.to, data: tx.data, value: tx.value || "0x0" }] });
  }

  function showError(target, error) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (!box) return;
    box.textContent = error.message || String(error);
    box.hidden = false;
    box.focus && box.focus();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-sign-in]");
    if (!button) return;
    button.disabled = true;
    signIn(button.dataset.signIn, button.dataset.next).catch((error) => {
      button.disabled = false;
      showError("sign-in-error", error);
    });
  });

  window.devicemint = { provider, account, signTypedData, sendTransaction, postJSON, showError };
})();
