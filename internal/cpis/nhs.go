package cpis

import "strings"

// NHSNumberSystem is the FHIR identifier system of NHS numbers.
const NHSNumberSystem = "https://fhir.nhs.uk/Id/nhs-number"

// NHSNumber is a valid 10-digit NHS number. The zero value means "none".
// It is personal data: never log it, never put it in an error message.
type NHSNumber string

// ParseNHSNumber checks s is exactly 10 ASCII digits, not one digit
// repeated, whose last digit is the Modulus 11 check digit of the first nine
// (weights 10..2; 11 becomes 0; a check value of 10 means no number can be
// valid with those nine digits).
func ParseNHSNumber(s string) (NHSNumber, error) {
	const op = "cpis.ParseNHSNumber"
	if len(s) != 10 {
		return "", E(op, InvalidNHSNumber, "an NHS number has exactly 10 digits")
	}
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return "", E(op, InvalidNHSNumber, "an NHS number has only digits")
		}
		if i < 9 {
			sum += int(c-'0') * (10 - i)
		}
	}
	if strings.Count(s, s[:1]) == 10 {
		// 0000000000 and 1111111111 pass Modulus 11, but no NHS number is
		// one digit repeated: such values are placeholders, never a child.
		return "", E(op, InvalidNHSNumber, "an NHS number is not one digit repeated")
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 || check != int(s[9]-'0') {
		return "", E(op, InvalidNHSNumber, "the NHS number fails its Modulus 11 check digit")
	}
	return NHSNumber(s), nil
}

// String returns the 10 digits.
func (n NHSNumber) String() string { return string(n) }
