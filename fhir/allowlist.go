package fhir

import (
	"strconv"
	"strings"
	"sync"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// clientElements is every element a client may send in a CP-IS Flag, and
// in a batch or transaction Bundle of Flag writes, as a FHIRPath without
// indexes, choice elements by their JSON name (valueContactPoint).
// Whatever else is set is refused. The list is closed on purpose: an
// element added to FHIR, or one nobody thought of, is refused until someone
// decides CP-IS may hold it. An entry's resource is checked as a Flag, from
// "Flag".
var clientElements = elementSet(
	"Flag.id",
	"Flag.identifier", "Flag.identifier.system", "Flag.identifier.value",
	"Flag.meta", "Flag.meta.versionId", "Flag.meta.lastUpdated", "Flag.meta.profile",
	"Flag.extension", "Flag.extension.url",
	"Flag.extension.valueContactPoint", "Flag.extension.valueContactPoint.system",
	"Flag.extension.valueContactPoint.value", "Flag.extension.valueContactPoint.use",
	"Flag.extension.valueDate",
	"Flag.status",
	"Flag.category", "Flag.category.coding",
	"Flag.category.coding.system", "Flag.category.coding.code", "Flag.category.coding.display",
	"Flag.code", "Flag.code.coding", "Flag.code.text",
	"Flag.code.coding.system", "Flag.code.coding.code", "Flag.code.coding.display",
	"Flag.subject", "Flag.subject.type", "Flag.subject.identifier",
	"Flag.subject.identifier.system", "Flag.subject.identifier.value",
	"Flag.period", "Flag.period.start", "Flag.period.end",
	"Flag.author", "Flag.author.type", "Flag.author.identifier",
	"Flag.author.identifier.system", "Flag.author.identifier.value", "Flag.author.display",

	"Bundle.type",
	"Bundle.entry", "Bundle.entry.fullUrl", "Bundle.entry.resource",
	"Bundle.entry.request", "Bundle.entry.request.method", "Bundle.entry.request.url",
	"Bundle.entry.request.ifMatch", "Bundle.entry.request.ifNoneExist",
)

func elementSet(paths ...string) map[string]bool {
	m := make(map[string]bool, len(paths))
	for _, p := range paths {
		m[p] = true
	}
	return m
}

// refusals explain the refusals clients most need to understand; any other
// element gets the general message.
var refusals = map[string]string{
	"Flag.text":              "narrative text is not accepted: free text could carry what CP-IS must not hold (data minimisation)",
	"Flag.contained":         "contained resources are not accepted: CP-IS holds no other record about the child or the family",
	"Flag.modifierExtension": "modifier extensions are not accepted by the cpis-flag profile",
	"Flag.subject.reference": "identify the child by an NHS number identifier only: a reference string is not accepted",
	"Flag.subject.display":   "names are not part of the CP-IS dataset: send the NHS number identifier only",
	"Flag.author.reference":  "identify the local authority by its ODS code identifier: a reference string is not accepted",
	"Bundle.entry.search":    "a batch or transaction entry carries a request, not a search result",
	"Bundle.entry.response":  "a batch or transaction entry carries a request: the server writes the response",
}

const (
	refusedElement       = "this element is not part of the cpis-flag profile: CP-IS refuses data it does not hold rather than dropping it"
	refusedBundleElement = "this element is not accepted in a batch or transaction Bundle here: a Bundle takes type and entry, an entry fullUrl, resource and request (method, url, ifMatch, ifNoneExist), and nothing else"
)

// allowed walks every set field of m (at FHIRPath path, allow-list key key)
// and records each one not in clientElements. It does not descend into a
// refused element: one problem per refused subtree.
func (pr *problems) allowed(m protoreflect.Message, path, key string) {
	d := m.Descriptor()
	primitive, choice := isPrimitive(d), isChoice(d)
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if primitive && f.Name() != "id" && f.Name() != "extension" {
			return true // part of the primitive's value (value, precision, timezone ...)
		}
		name := elementOf(f)
		p, k := path+"."+name, key+"."+name
		if choice { // value[x]: the JSON name is value + type, on the parent element
			p, k = path+upperFirst(name), key+upperFirst(name)
		}
		if f.Message() != nil && isChoice(f.Message()) {
			pr.allowed(v.Message(), p, k)
			return true
		}
		if !clientElements[k] {
			pr.refuse(p, k)
			return true
		}
		pr.descend(f, v, p, k)
		return true
	})
}

// descend walks into an allowed element: each item of a list, with its index.
func (pr *problems) descend(f protoreflect.FieldDescriptor, v protoreflect.Value, path, key string) {
	if f.Message() == nil {
		return
	}
	if !f.IsList() {
		pr.allowed(v.Message(), path, key)
		return
	}
	l := v.List()
	for i := 0; i < l.Len(); i++ {
		pr.allowed(l.Get(i).Message(), path+"["+strconv.Itoa(i)+"]", key)
	}
}

func (pr *problems) refuse(path, key string) {
	msg, ok := refusals[key]
	switch {
	case ok:
	case strings.HasPrefix(key, "Bundle"):
		msg = refusedBundleElement
	default:
		msg = refusedElement
	}
	pr.invalid(path, msg)
}

// elementOf is the FHIR element name of a proto field. A Reference's literal
// reference is a oneof of typed ids in the protos; in FHIR it is "reference".
func elementOf(f protoreflect.FieldDescriptor) string {
	if o := f.ContainingOneof(); o != nil && o.Name() == "reference" {
		return "reference"
	}
	return f.JSONName()
}

// kinds remembers, per message type, what isPrimitive and isChoice answer:
// reading a descriptor's options extension costs more than the walk itself,
// and every Flag parsed (an import parses hundreds of thousands) asks again.
var kinds sync.Map // protoreflect.FullName -> messageKind

type messageKind struct{ primitive, choice bool }

func kindOf(d protoreflect.MessageDescriptor) messageKind {
	if k, ok := kinds.Load(d.FullName()); ok {
		return k.(messageKind)
	}
	sk, _ := proto.GetExtension(d.Options(), apb.E_StructureDefinitionKind).(apb.StructureDefinitionKindValue)
	k := messageKind{
		primitive: sk == apb.StructureDefinitionKindValue_KIND_PRIMITIVE_TYPE,
		choice:    proto.HasExtension(d.Options(), apb.E_IsChoiceType),
	}
	kinds.Store(d.FullName(), k)
	return k
}

func isPrimitive(d protoreflect.MessageDescriptor) bool { return kindOf(d).primitive }

func isChoice(d protoreflect.MessageDescriptor) bool { return kindOf(d).choice }

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
