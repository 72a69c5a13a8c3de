package viewer

import (
	"net/http"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// adviceView is what the Trust's LA directory says about a plan's LA
// (SOP section 7): for one of its LAs, which number to call now and how to
// refer; for any other, that the child is out of area.
type adviceView struct {
	InArea          bool
	Call            phone  // the number to call now
	CallLabel       string // "Office hours number" or "Emergency duty number"
	OfficeOpen      bool
	Hours           string // "Monday to Friday, 09:00 to 17:00"
	Referral        string
	ReferralContact contact
}

// advice is the directory's advice for an LA at the injected clock's now
// (judged in Europe/London by the directory).
func (a *app) advice(laCode string) *adviceView {
	ad := a.cfg.Directory.Advise(laCode, a.now())
	if !ad.InArea {
		return &adviceView{}
	}
	return &adviceView{
		InArea: true, Call: phoneOf(ad.CallNumber), CallLabel: ad.CallLabel, OfficeOpen: ad.OfficeOpen,
		Hours: officeHours(ad.Entry.OfficeHours), Referral: ad.Entry.Referral,
		ReferralContact: contactOf(ad.Entry.ReferralContact),
	}
}

// directoryEntry is one LA of the directory page.
type directoryEntry struct {
	LA              string // "Name (CODE)"
	ID              string // the heading's id
	Emergency       phone
	Office          phone
	Hours           string
	OpenNow         bool
	Referral        string
	ReferralContact contact
}

// directory lists the Trust's LA directory (GET /app/directory).
func (a *app) directory(w http.ResponseWriter, r *http.Request, v *visit) {
	var entries []directoryEntry
	if a.cfg.Directory != nil {
		now := a.now()
		for _, e := range a.cfg.Directory.Entries() {
			entries = append(entries, directoryEntry{
				LA: laLabel(e.LocalAuthority), ID: "la-" + strings.ToLower(e.Code),
				Emergency: phoneOf(e.EmergencyPhone), Office: phoneOf(e.OfficePhone),
				Hours: officeHours(e.OfficeHours), OpenNow: a.cfg.Directory.Advise(e.Code, now).OfficeOpen,
				Referral: e.Referral, ReferralContact: contactOf(e.ReferralContact),
			})
		}
	}
	a.render(w, r, v, http.StatusOK, "directory", view{Title: "Local authority directory", Nav: "directory", Data: entries})
}

// officeHours writes an LA's office hours ("Monday to Friday, 09:00 to
// 17:00"), "" when the entry has none.
func officeHours(h cpis.OfficeHours) string {
	if len(h.Days) == 0 || h.Open == "" || h.Close == "" {
		return ""
	}
	return h.String()
}
