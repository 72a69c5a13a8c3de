package cpis

import "time"

// LocalAuthority is a local authority with responsibility for children's
// social care, as it appears on a plan: its code and name.
type LocalAuthority struct {
	Code string
	Name string
}

// DirectoryEntry is what the Trust keeps about one of its LAs (SOP section
// 7): the numbers staff call, when the office answers, and how the LA wants
// referrals made. The SOP asks staff to follow the route of the LA on the
// record, because each of the six works differently.
type DirectoryEntry struct {
	LocalAuthority
	// EmergencyPhone is the emergency duty team, for urgent contact outside
	// office hours; every entry has one.
	EmergencyPhone string
	// OfficePhone is for routine follow-up in office hours; it may be empty.
	OfficePhone string
	// Referral says in a sentence how to refer a child to the LA's
	// children's social care, e.g. "Multi-Agency Safeguarding Hub (MASH):
	// telephone first, then the online referral form". It may be empty.
	Referral string
	// ReferralContact is the telephone number or secure e-mail address for
	// referrals (ReferralByPhone tells which). It may be empty.
	ReferralContact string
	// OfficeHours is when OfficePhone answers, in UK time.
	OfficeHours OfficeHours
}

// TrustDirectory is the entries of DevDirectory: the Trust's six local
// authorities (docs/domain.md, The Trust's LA directory), in the order the
// demo data and the dev personas number them.
func TrustDirectory() []DirectoryEntry { return DevDirectory().Entries() }

// devDirectoryEntries is the dev directory as a literal. The codes are
// fictional (ZLA prefix), the numbers are in Ofcom's range reserved for drama
// (020 7946 0xxx) and the e-mail addresses are at example.org, so nothing here
// can reach a real office. examples/la-directory.yaml holds the same entries
// as a file; a test keeps the two equal.
func devDirectoryEntries() []DirectoryEntry {
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	nineToFive := OfficeHours{Days: weekdays, Open: "09:00", Close: "17:00"}
	hours := func(open, close string) OfficeHours { return OfficeHours{Days: weekdays, Open: open, Close: close} }
	return []DirectoryEntry{
		{LocalAuthority{"ZLA01", "London Borough of Hackney and City of London"}, "020 7946 0101", "020 7946 0102",
			"Multi-Agency Safeguarding Hub (MASH): telephone first, then the online referral form", "020 7946 0103", nineToFive},
		{LocalAuthority{"ZLA02", "London Borough of Newham"}, "020 7946 0201", "020 7946 0202",
			"Children's Front Door: the multi-agency referral form by secure e-mail; telephone the emergency duty number if a child is at immediate risk",
			"childrensfrontdoor@zla02.example.org", nineToFive},
		{LocalAuthority{"ZLA03", "London Borough of Tower Hamlets"}, "020 7946 0301", "020 7946 0302",
			"Multi-Agency Safeguarding Hub (MASH): telephone consultation with a social worker, then the multi-agency referral form", "020 7946 0303", nineToFive},
		{LocalAuthority{"ZLA04", "Bedford Borough Council"}, "020 7946 0401", "020 7946 0402",
			"Multi-Agency Safeguarding Hub (MASH): telephone first, then the online referral form within 48 hours", "020 7946 0403", hours("08:45", "17:00")},
		{LocalAuthority{"ZLA05", "Central Bedfordshire Council"}, "020 7946 0501", "020 7946 0502",
			"Access and Referral Hub: telephone to discuss the concern, then the online referral form", "020 7946 0503", hours("08:30", "17:00")},
		{LocalAuthority{"ZLA06", "Luton Borough Council"}, "020 7946 0601", "020 7946 0602",
			"Multi-Agency Safeguarding Hub (MASH): the multi-agency referral form by secure e-mail", "mash@zla06.example.org", hours("09:00", "16:30")},
	}
}
