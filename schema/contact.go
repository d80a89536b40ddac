package schema

import (
	"net/mail"
	"regexp"
	"strings"
)

// ContactFields are a user's fields the alert channels deliver to: email for mail, phone
// for text messages and the group robots' mentions.
var ContactFields = []string{"email", "phone"}

var phonePattern = regexp.MustCompile(`^\+?[0-9]{5,20}$`)

// CheckContact checks and normalises the named contact fields of user u (both when none is
// named). An empty value clears one. email must be a bare address (name@example.com); phone
// 5 to 20 digits with an optional leading +, the spaces and hyphens people type dropped.
func CheckContact(u Doc, fields ...string) error {
	if len(fields) == 0 {
		fields = ContactFields
	}
	for _, f := range fields {
		v, ok := u[f]
		if !ok || v == nil {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			return FieldError(CodeValidation, f, "%s 须为文字 / %s must be a string", f, f)
		}
		s = strings.TrimSpace(s)
		switch f {
		case "email":
			if a, err := mail.ParseAddress(s); s != "" && (err != nil || a.Address != s) {
				return FieldError(CodeValidation, f, "邮箱 %q 不是有效地址，应如 name@example.com / email %q is not an address like name@example.com", s, s)
			}
		case "phone":
			s = strings.NewReplacer(" ", "", "-", "").Replace(s)
			if s != "" && !phonePattern.MatchString(s) {
				return FieldError(CodeValidation, f, "电话 %q 不是有效号码：5 至 20 位数字，可带 +、空格或连字符 / phone %q is not a phone number: 5 to 20 digits, an optional leading +, spaces or hyphens", v, v)
			}
		}
		u[f] = s
	}
	return nil
}
