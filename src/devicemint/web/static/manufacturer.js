// The manufacturer portal's wallet actions, and nothing else (every page reads without JS):
// sign the MOU (EIP-712 typed data the server prepares), send the stake's approve and stake
// transactions, publish a firmware release. Signing and sending go through window.devicemint
// (wallet.js): the injected wallet, or on the local chain the development wallet.
(function () {
  "use strict";
  const PREFIX = "/portal/manufacturer";

  function say(button, text) {
    const box = button.dataset.status && document.getElementById(button.dataset.status);
    if (box) box.textContent = text;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.detail || `${url} answered ${response.status}`);
    return answer;
  }

  // Wait until the transaction is mined; a reverted one is an error.
  async function mined(hash) {
    for (;;) {
      const { status } = await getJSON(`${PREFIX}/transactions/${hash}`);
      if (status === "confirmed") return;
      if (status === "reverted") throw new Error(`transaction ${hash} reverted`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // Go to the page the server named; the same page (a fragment apart) is loaded again.
  function go(location) {
    const target = new URL(location, window.location.href);
    const here = window.location;
    if (target.pathname === here.pathname && target.search === here.search) {
      here.hash = target.hash;
      here.reload();
    } else {
      here.assign(target.href);
    }
  }

  async function signMou(button) {
    const base = `${PREFIX}/applications/${button.dataset.application}/mou`;
    const mou = button.dataset.mou;
    say(button, "Preparing the MOU signature…");
    const prepared = await window.devicemint.postJSON(`${base}/typed-data`, { mou_sha256: mou });
    say(button, "Sign the MOU in your wallet…");
    const signature = await window.devicemint.signTypedData(prepared.typed_data);
    say(button, "Recording your signature…");
    const done = await window.devicemint.postJSON(`${base}/signature`, {
      mou_sha256: mou,
      nonce: prepared.nonce,
      deadline: prepared.deadline,
      signature,
    });
    go(done.location);
  }

  async function stake(button) {
    const { transactions } = await getJSON(button.dataset.transactions);
    for (const [index, tx] of transactions.entries()) {
      say(button, `Transaction ${index + 1} of ${transactions.length}: ${tx.what}. Confirm it in your wallet…`);
      const hash = await window.devicemint.sendTransaction(tx);
      say(button, `Transaction ${index + 1} of ${transactions.length} sent (${hash}); waiting for it to be mined…`);
      await mined(hash);
    }
    say(button, "Staked on chain; confirming the stake…");
    document.getElementById(button.dataset.confirm).submit();
  }

  async function publish(button) {
    const form = document.getElementById(button.dataset.form);
    const body = { version: form.elements.version.value, image_sha256: form.elements.image_sha256.value };
    say(button, "Preparing the transaction…");
    const tx = await window.devicemint.postJSON(button.dataset.url, body);
    say(button, "Confirm the transaction in your wallet…");
    const hash = await window.devicemint.sendTransaction(tx);
    say(button, `Sent (${hash}); waiting for it to be mined…`);
    await mined(hash);
    window.location.reload();
  }

  const ACTIONS = { "sign-mou": signMou, stake, publish };

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-wallet-action]");
    if (!button || !ACTIONS[button.dataset.walletAction]) return;
    const error = document.getElementById(button.dataset.error);
    if (error) error.hidden = true;
    button.disabled = true;
    ACTIONS[button.dataset.walletAction](button).catch((failure) => {
      button.disabled = false;
      say(button, "");
      window.devicemint.showError(error, failure);
    });
  });
})();
