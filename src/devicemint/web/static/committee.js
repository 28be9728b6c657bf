// The review portals' wallet actions (see wallet.js for the wallet itself):
// - a committee member's vote: the server prepares vote(proposalId, support), the member's wallet
//   sends it from the member's own account, the server checks the mined vote and updates the case;
// - the foundation's countersignature of an MOU: EIP-712 typed data the server prepares, signed
//   in the wallet, checked and recorded by the server.
// The page reloads afterwards, so what it shows (tally, stage) is what the server and chain hold.
(function () {
  "use strict";

  async function getJSON(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `${url} answered ${response.status}`);
    return body;
  }

  function say(id, text) {
    const box = document.getElementById(id);
    if (box) box.textContent = text;
  }

  function busy(selector, on) {
    document.querySelectorAll(selector).forEach((b) => { b.disabled = on; });
  }

  async function vote(button) {
    const proposal = button.dataset.proposal;
    const support = button.dataset.vote === "for";
    say("vote-status", "Preparing the vote…");
    const tx = await getJSON(`/portal/committee/proposals/${proposal}/vote-transaction?support=${support}`);
    say("vote-status", "Confirm the vote in your wallet…");
    const hash = await window.devicemint.sendTransaction(tx);
    say("vote-status", `Vote sent in ${hash}; recording it…`);
    await window.devicemint.postJSON(`/portal/committee/proposals/${proposal}/votes`, { tx_hash: hash });
    window.location.reload();
  }

  async function countersign(button) {
    say(button.dataset.status, "Preparing the MOU for your signature…");
    const prepared = await getJSON(button.dataset.prepare);
    say(button.dataset.status, "Sign the MOU in your wallet…");
    const signature = await window.devicemint.signTypedData(prepared.typed_data);
    await window.devicemint.postJSON(button.dataset.submit, {
      mou_sha256: prepared.mou_sha256,
      nonce: prepared.nonce,
      deadline: prepared.deadline,
      signature,
    });
    window.location.assign(button.dataset.done);
  }

  document.addEventListener("click", (event) => {
    const voting = event.target.closest("[data-vote]");
    if (voting) {
      busy("[data-vote]", true);
      vote(voting).catch((error) => {
        busy("[data-vote]", false);
        say("vote-status", "");
        window.devicemint.showError("vote-error", error);
      });
      return;
    }
    const signing = event.target.closest("[data-countersign]");
    if (signing) {
      signing.disabled = true;
      countersign(signing).catch((error) => {
        signing.disabled = false;
        say(signing.dataset.status, "");
        window.devicemint.showError(signing.dataset.error, error);
      });
    }
  });
})();
