package cpis

// LocalAuthority is a local authority with responsibility for children's
// social care, as it appears on a plan: its code and name.
type LocalAuthority struct {
	Code string
	Name string
}

// DirectoryEntry is what the Trust keeps about one of its LAs: its contact
// numbers for staff who need to call (SOP section 7).
type DirectoryEntry struct {
	LocalAuthority
	EmergencyPhone string
	OfficePhone    string
}

// TrustDirectory is the Trust's six local authorities
// (docs/domain.md, The Trust's LA directory).
// The codes are fictional (ZLA prefix) and the numbers are in Ofcom's range
// reserved for drama (020 7946 0xxx), so nothing here can reach a real office.
func TrustDirectory() []DirectoryEntry {
	return []DirectoryEntry{
		{LocalAuthority{"ZLA01", "London Borough of Hackney and City of London"}, "020 7946 0101", "020 7946 0102"},
		{LocalAuthority{"ZLA02", "London Borough of Newham"}, "020 7946 0201", "020 7946 0202"},
		{LocalAuthority{"ZLA03", "London Borough of Tower Hamlets"}, "020 7946 0301", "020 7946 0302"},
		{LocalAuthority{"ZLA04", "Bedford Borough Council"}, "020 7946 0401", "020 7946 0402"},
		{LocalAuthority{"ZLA05", "Central Bedfordshire Council"}, "020 7946 0501", "020 7946 0502"},
		{LocalAuthority{"ZLA06", "Luton Borough Council"}, "020 7946 0601", "020 7946 0602"},
	}
}
