package server

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"fieldsync/schema"
)

// The language of the API's answers. A request's Accept-Language picks Chinese or English
// where a text has one choice; a request that names neither, or both equally, gets both, as
// the printed forms are written (中文 English). Codes and field names never change: they are
// for programs. docs/api.md, "Language".

// Answer languages.
const (
	langBoth = ""
	langZh   = "zh"
	langEn   = "en"
)

// answerLang reads Accept-Language.
func answerLang(header string) string {
	var qzh, qen float64
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		switch primary {
		case "zh":
			qzh = max(qzh, q)
		case "en":
			qen = max(qen, q)
		}
	}
	switch {
	case qzh > qen:
		return langZh
	case qen > qzh:
		return langEn
	}
	return langBoth
}

// codeZh says in Chinese what each error code means, for errors written only in English.
var codeZh = map[string]string{
	schema.CodeBadRequest:        "请求格式不对",
	schema.CodeValidation:        "填写不符合要求",
	schema.CodeUnauthenticated:   "未登录或登录已失效，请重新登录",
	schema.CodeForbidden:         "没有权限执行此操作",
	schema.CodeOutOfScope:        "此记录不在本设备范围内",
	schema.CodeNotFound:          "找不到该记录",
	schema.CodeMethodNotAllowed:  "不支持此操作",
	schema.CodeConflict:          "记录已被他人修改，请刷新后再改",
	schema.CodeInvalidTransition: "当前状态下不能执行此步骤",
	schema.CodeSealed:            "反馈单已签署封存，不能修改",
	schema.CodeMissingBlob:       "图片尚未上传完整",
	schema.CodeDependsOnRejected: "所依赖的修改已被拒绝",
	schema.CodeTooLarge:          "内容超过大小限制",
	schema.CodeUnsupportedMedia:  "不支持此文件类型",
	schema.CodeHashMismatch:      "文件内容与名称不符",
	schema.CodeDeviceSignature:   "设备签名缺失或不正确",
	schema.CodeRateLimited:       "尝试次数过多，请稍后再试",
	schema.CodeCheckpointExpired: "同步位置已过期，需要重新同步",
	schema.CodeUnavailable:       "服务暂不可用",
	schema.CodeInternal:          "服务器内部错误",
}

// zhDetail renders the commonest English validation messages in Chinese, with the item's
// words; others get the code's sentence.
var zhDetail = []struct {
	re *regexp.Regexp
	f  func(item string, m []string) string
}{
	{regexp.MustCompile(`^\S+ is required$`), func(item string, _ []string) string { return "请填写" + item }},
	{regexp.MustCompile(`is (\d+) characters long; at most (\d+) are allowed`), func(item string, m []string) string {
		return item + "有 " + m[1] + " 个字，最多 " + m[2] + " 个"
	}},
	{regexp.MustCompile(`is not one of`), func(item string, _ []string) string { return item + "不是可选的值" }},
	{regexp.MustCompile(`is not an RFC 3339 time`), func(item string, _ []string) string { return item + "不是有效的时间" }},
	{regexp.MustCompile(`is not a date`), func(item string, _ []string) string { return item + "不是有效的日期（年-月-日）" }},
	{regexp.MustCompile(`does not exist`), func(item string, _ []string) string { return "所选" + item + "不存在" }},
}

var fieldToken = regexp.MustCompile(`\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\b[a-z]+\b`)

// inWords replaces the field names in an English message by the items' English words: the
// error's own field (in its entity's words) and any other known name with an underscore.
func inWords(msg string, se *schema.Error) string {
	return fieldToken.ReplaceAllStringFunc(msg, func(tok string) string {
		if tok == se.Field {
			l, _ := schema.ItemLabel(se.Entity, tok)
			return l.En
		}
		if strings.Contains(tok, "_") {
			if l, ok := schema.ItemLabel(se.Entity, tok); ok {
				return l.En
			}
		}
		return tok
	})
}

// splitBilingual splits a message already written "中文 English" (or "中文 / English") at
// its last Chinese character.
func splitBilingual(msg string) (zh, en string, ok bool) {
	end := -1
	for i, r := range msg {
		if unicode.Is(unicode.Han, r) || unicode.In(r, unicode.Common) && r >= 0x3000 {
			end = i + len(string(r))
		}
	}
	if end < 0 {
		return "", msg, false
	}
	zh = strings.TrimSpace(msg[:end])
	en = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(msg[end:]), "/"))
	zh = strings.TrimSpace(strings.TrimSuffix(zh, "/"))
	return zh, en, true
}

// localize returns the error's message and its item's words in lang.
func localize(se *schema.Error, lang string) (message, item string) {
	var label schema.Label
	if se.Field != "" {
		label, _ = schema.ItemLabel(se.Entity, se.Field)
	}
	zh, en, bilingual := splitBilingual(se.Message)
	en = inWords(en, se)
	if !bilingual {
		zh = codeZh[se.Code]
		if se.Field != "" {
			zh = label.Zh + "：" + zh
			for _, d := range zhDetail {
				if m := d.re.FindStringSubmatch(se.Message); m != nil {
					zh = d.f(label.Zh, m)
					break
				}
			}
		}
	}
	if en == "" {
		en = se.Code
	}
	switch lang {
	case langZh:
		return zh, label.Zh
	case langEn:
		return en, label.En
	}
	if se.Field == "" {
		return zh + " " + en, ""
	}
	return zh + " " + en, label.Both()
}
