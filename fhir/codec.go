package fhir

import (
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The jsonformat codecs are created once and shared. Creating one resolves
// the FHIR version's configuration and loads a time zone, work not worth
// repeating per request; once created neither keeps mutable state (the
// pure-format Marshaller's depth map stays nil, only analytics marshallers
// write to it), so one value serves every goroutine. They are codecs, not
// configuration, which is why a package variable is acceptable here.
var (
	marshaller   = newMarshaller()
	unmarshaller = newUnmarshaller()
	// containedField maps each R4 resource message to its field in
	// ContainedResource's oneof, so any resource can be wrapped for a Bundle.
	containedField = containedFields()
)

// maxNestingDepth bounds how deep a client's JSON may nest. The deepest
// element a CP-IS Flag may carry is Flag.extension.valueContactPoint.system;
// the margin lets the parser reach and name a disallowed element a few levels
// further down, while a hostile body cannot make it recurse without end.
const maxNestingDepth = 12

func newMarshaller() *jsonformat.Marshaller {
	m, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	if err != nil {
		panic("fhir: creating the R4 marshaller: " + err.Error()) // only fails for an unknown FHIR version
	}
	return m
}

// newUnmarshaller reads dates in UTC: a date without a time of day becomes
// midnight UTC, from which dateFrom recovers the calendar day exactly.
// Required-element checks are done by ParseFlag itself, against the profile
// and with FHIRPath expressions, so jsonformat validates primitives only.
func newUnmarshaller() *jsonformat.Unmarshaller {
	u, err := jsonformat.NewUnmarshallerWithoutValidation("UTC", fhirversion.R4)
	if err != nil {
		panic("fhir: creating the R4 unmarshaller: " + err.Error()) // "UTC" needs no zone database
	}
	u.MaxNestingDepth = maxNestingDepth
	return u
}

func containedFields() map[protoreflect.FullName]protoreflect.FieldDescriptor {
	oneof := (&bcrpb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource")
	m := make(map[protoreflect.FullName]protoreflect.FieldDescriptor, oneof.Fields().Len())
	for i := 0; i < oneof.Fields().Len(); i++ {
		f := oneof.Fields().Get(i)
		m[f.Message().FullName()] = f
	}
	return m
}

// MarshalResource renders an R4 resource proto (a *flagpb.Flag, a Bundle,
// an OperationOutcome ..., or a ContainedResource holding one) as compact
// FHIR JSON. Object keys come out in alphabetical order, as jsonformat
// writes them. The error never carries the library's message, which may
// print proto contents (personal data); a failure here is a bug in the
// proto's construction.
func MarshalResource(m proto.Message) ([]byte, error) {
	const op = "fhir.MarshalResource"
	var b []byte
	var err error
	if cr, ok := m.(*bcrpb.ContainedResource); ok {
		b, err = marshaller.Marshal(cr)
	} else {
		b, err = marshaller.MarshalResource(m)
	}
	if err != nil {
		return nil, cpis.E(op, cpis.Other, "a "+string(m.ProtoReflect().Descriptor().Name())+" could not be rendered as FHIR JSON")
	}
	return b, nil
}

// contain wraps a resource in a ContainedResource, as Bundle entries hold
// them. A message that is not an R4 resource is a programming error.
func contain(r proto.Message) *bcrpb.ContainedResource {
	if cr, ok := r.(*bcrpb.ContainedResource); ok {
		return cr
	}
	name := r.ProtoReflect().Descriptor().FullName()
	f, ok := containedField[name]
	if !ok {
		panic("fhir: " + string(name) + " is not an R4 resource")
	}
	cr := &bcrpb.ContainedResource{}
	cr.ProtoReflect().Set(f, protoreflect.ValueOfMessage(r.ProtoReflect()))
	return cr
}

// typeAndID returns a resource's type name and logical id ("" if it has none).
func typeAndID(r proto.Message) (string, string) {
	if cr, ok := r.(*bcrpb.ContainedResource); ok {
		m := cr.ProtoReflect()
		if f := m.WhichOneof(m.Descriptor().Oneofs().ByName("oneof_resource")); f != nil {
			r = m.Get(f).Message().Interface()
		}
	}
	m := r.ProtoReflect()
	name := string(m.Descriptor().Name())
	f := m.Descriptor().Fields().ByName("id")
	if f == nil || !m.Has(f) {
		return name, ""
	}
	id := m.Get(f).Message()
	return name, id.Get(id.Descriptor().Fields().ByName("value")).String()
}

// Constructors of FHIR primitives, so that builders read as the resource does.

func str(s string) *dpb.String          { return &dpb.String{Value: s} }
func uri(s string) *dpb.Uri             { return &dpb.Uri{Value: s} }
func code(s string) *dpb.Code           { return &dpb.Code{Value: s} }
func canonical(s string) *dpb.Canonical { return &dpb.Canonical{Value: s} }
func id(s string) *dpb.Id               { return &dpb.Id{Value: s} }
func boolean(b bool) *dpb.Boolean       { return &dpb.Boolean{Value: b} }
func markdown(s string) *dpb.Markdown   { return &dpb.Markdown{Value: s} }

// utc is the time zone name jsonformat writes as "Z".
const utc = "Z"

func midnightUTC(d cpis.Date) int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).UnixMicro()
}

// date renders a calendar day as a FHIR date.
func date(d cpis.Date) *dpb.Date {
	return &dpb.Date{ValueUs: midnightUTC(d), Timezone: utc, Precision: dpb.Date_DAY}
}

// dateTime renders a calendar day as a FHIR dateTime at day precision, the
// form CP-IS uses for Period.start and Period.end.
func dateTime(d cpis.Date) *dpb.DateTime {
	return &dpb.DateTime{ValueUs: midnightUTC(d), Timezone: utc, Precision: dpb.DateTime_DAY}
}

// instant renders t in UTC at the finest precision it needs (seconds,
// milliseconds or microseconds), so that stored times come back unchanged.
func instant(t time.Time) *dpb.Instant {
	t = t.UTC()
	p := dpb.Instant_MICROSECOND
	switch {
	case t.Nanosecond() == 0:
		p = dpb.Instant_SECOND
	case t.Nanosecond()%int(time.Millisecond) == 0:
		p = dpb.Instant_MILLISECOND
	}
	return &dpb.Instant{ValueUs: t.UnixMicro(), Timezone: utc, Precision: p}
}

func coding(system, c, display string) *dpb.Coding {
	cd := &dpb.Coding{System: uri(system), Code: code(c)}
	if display != "" {
		cd.Display = str(display)
	}
	return cd
}

func concept(codings ...*dpb.Coding) *dpb.CodeableConcept {
	return &dpb.CodeableConcept{Coding: codings}
}

// identifier leaves out an empty value: FHIR forbids empty strings.
func identifier(system, value string) *dpb.Identifier {
	i := &dpb.Identifier{System: uri(system)}
	if value != "" {
		i.Value = str(value)
	}
	return i
}

// logicalRef is a Reference by business identifier, with the type of the
// resource it stands for and an optional display.
func logicalRef(typ, system, value, display string) *dpb.Reference {
	r := &dpb.Reference{Type: uri(typ), Identifier: identifier(system, value)}
	if display != "" {
		r.Display = str(display)
	}
	return r
}
