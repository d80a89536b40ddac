package server

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleFlashLeavesLogoutClickable: the message an action shows (已汇总 Compiled …) sits
// at the top right, over the header's Log out button, for a few seconds; a click on Log out
// in those seconds still logs out.
func TestConsoleFlashLeavesLogoutClickable(t *testing.T) {
	env := newEnv(t, true)
	base := env.start()
	ctx := browser(t, time.Minute)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	step(t, ctx, "compile the month",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(css("#login-form")),
		chromedp.SendKeys(css("input[name=username]"), "coord"),
		chromedp.SendKeys(css("input[name=password]"), DemoPassword),
		chromedp.Click(css("#login-form button[type=submit]")),
		chromedp.WaitVisible(css("table.tickets")),
		chromedp.Navigate(base+"/console/#/months"),
		chromedp.WaitVisible(css(".month-actions button")),
		chromedp.Click(css(".month-actions button")),
		chromedp.WaitVisible(css(".month-actions .confirm")),
		chromedp.Click(css(".month-actions .confirm-yes")),
		chromedp.WaitVisible(css("#flash .flash-msg")),
	)
	// What a click at the middle of Log out reaches while the message shows.
	hit := read(t, ctx, "hit test", chromedp.Evaluate[string](`(() => {
		const r = document.getElementById('logout').getBoundingClientRect();
		const el = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
		return !document.querySelector('#flash .flash-msg') ? 'no message' : el?.closest('#logout') ? 'logout' : (el?.className || el?.tagName || 'nothing');
	})()`))
	if hit != "logout" && hit != "no message" {
		t.Fatalf("a click on Log out while the message shows reaches %q, not the button", hit)
	}
	step(t, ctx, "log out", chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#login-form")))
}
