package schema

// Label is a word or phrase in Chinese and English: what a person reads for a field name or
// an enumeration code. Error messages, the console, the field app, PDFs and the API document
// all take their words from here.
type Label struct {
	Zh string `json:"zh"`
	En string `json:"en"`
}

// Both is the label as the printed forms write it: 中文 English.
func (l Label) Both() string { return l.Zh + " " + l.En }

// UrgencyLabels is the one set of urgency words: the console, the field app (through
// meta.json), the PDFs and the alert texts.
var UrgencyLabels = map[string]Label{
	"critical": {"特急", "Critical"},
	"high":     {"紧急", "High"},
	"normal":   {"一般", "Normal"},
	"low":      {"低", "Low"},
}

// itemLabels names the items of the records as a user calls them. A key "entity.field" is
// that entity's own word; a bare "field" serves every entity that has no word of its own.
var itemLabels = map[string]Label{
	// customers, sites, equipment
	"customer.code":       {"客户编号", "customer code"},
	"customer.name":       {"客户名称", "customer name"},
	"customer.phone":      {"客户电话", "customer phone"},
	"customer.address":    {"客户地址", "customer address"},
	"site.name":           {"地点名称", "site name"},
	"site.address":        {"地点地址", "site address"},
	"site.contacts":       {"现场联系人", "site contacts"},
	"asset.model":         {"设备型号", "equipment model"},
	"asset.serial":        {"设备序列号", "equipment serial"},
	"install_date":        {"安装日期", "installation date"},
	"warranty_until":      {"保修至", "warranty until"},
	"manufacturer":        {"厂家", "manufacturer"},
	"manufacturer_onsite": {"厂家上门", "manufacturer on site"},
	// people
	"user.name":  {"姓名", "name"},
	"user.phone": {"手机", "phone"},
	"username":   {"用户名", "username"},
	"password":   {"密码", "password"},
	"role":       {"角色", "role"},
	"email":      {"邮箱", "email"},
	"dedicated":  {"专职售后", "dedicated after-sales staff"},
	"probation":  {"试用期", "on probation"},
	"active":     {"启用", "active"},
	"employment": {"任职记录", "employment history"},
	// the service log
	"number":              {"单号", "number"},
	"status":              {"状态", "status"},
	"source":              {"来源", "source"},
	"received_at":         {"受理时间", "time received"},
	"customer_id":         {"客户", "customer"},
	"site_id":             {"地点", "site"},
	"asset_id":            {"设备", "equipment"},
	"contact_name":        {"联系人", "contact person"},
	"contact_phone":       {"联系电话", "contact phone"},
	"address":             {"地址", "address"},
	"fault_symptoms":      {"故障现象", "fault symptoms"},
	"urgency":             {"紧急程度", "urgency"},
	"service_type":        {"服务类型", "service type"},
	"warranty":            {"保修", "warranty"},
	"warranty_reason":     {"保修说明", "warranty note"},
	"chargeable":          {"是否收费", "chargeable"},
	"agreed_handling":     {"商定处理方式", "agreed handling"},
	"service_mode":        {"服务方式", "service mode"},
	"actual_service_mode": {"实际服务方式", "actual service mode"},
	"assignee_id":         {"技术员", "technician"},
	"technician_id":       {"技术员", "technician"},
	"due_response_at":     {"响应时限", "response deadline"},
	"due_arrival_at":      {"到场时限", "arrival deadline"},
	"tech_notes":          {"技术员备注", "technician notes"},
	"inspection_record":   {"检查记录", "inspection record"},
	"handling_result":     {"处理结果", "handling result"},
	"time_spent_min":      {"用时（分钟）", "time spent (minutes)"},
	"cancel_reason":       {"取消原因", "cancel reason"},
	"no_sheet_reason":     {"无反馈单原因", "reason for no sheet"},
	"note":                {"说明", "note"},
	"notes":               {"备注", "notes"},
	"reason":              {"原因", "reason"},
	"comment":             {"意见", "comment"},
	"description":         {"投诉内容", "complaint"},
	"outcome":             {"回访结果", "call outcome"},
	"called_at":           {"回访时间", "time of the call"},
	// the feedback sheet
	"arrived_at":                {"到达时间", "arrival time"},
	"departed_at":               {"离开时间", "departure time"},
	"parts":                     {"更换配件", "parts replaced"},
	"labour_fen":                {"人工费", "labour charge"},
	"parts_fen":                 {"配件费", "parts charge"},
	"shipping_fen":              {"运费", "shipping charge"},
	"rating":                    {"满意度", "satisfaction rating"},
	"rating_comment":            {"客户意见", "customer comment"},
	"signer_name":               {"签字人姓名", "signer's name"},
	"signature_blob":            {"客户签字", "customer signature"},
	"stamp_blob":                {"客户盖章", "company stamp"},
	"technician_signature_blob": {"工程师签字", "technician signature"},
	"absent_reason":             {"客户不在场原因", "why the customer could not sign"},
	"signed_at":                 {"签字时间", "signing time"},
	// money
	"kind":         {"类别", "kind"},
	"amount_fen":   {"金额", "amount"},
	"spent_on":     {"发生日期", "date spent"},
	"receipt_blob": {"票据照片", "receipt photo"},
	"lines":        {"明细", "lines"},
	"cost_fen":     {"成本", "cost"},
	"ticket_id":    {"工单", "ticket"},
	"sale_id":      {"销售单", "sale"},
	"approval_id":  {"审批", "approval"},
	// protocol and settings
	"month":         {"月份", "month"},
	"action":        {"步骤", "step"},
	"client_time":   {"设备时间", "device time"},
	"app_version":   {"应用版本", "app version"},
	"pending":       {"待上传数", "unsent count"},
	"pending_since": {"最早待上传时间", "oldest unsent time"},
	"timezone":      {"公司时区", "company time zone"},
	"If-Match":      {"版本（If-Match）", "version (If-Match)"},
}

// ItemLabel is the words for a field of an entity ("" entity: any), and whether there are
// any: an unknown field name is returned as its own label.
func ItemLabel(entity, field string) (Label, bool) {
	if l, ok := itemLabels[entity+"."+field]; ok {
		return l, true
	}
	if l, ok := itemLabels[field]; ok {
		return l, true
	}
	return Label{field, field}, false
}

// ItemLabels is every item's words, for the console and the field app (meta.json).
func ItemLabels() map[string]Label { return itemLabels }
