-- The LA's own reference for each plan (cpis.Plan.Reference), from its
-- case-management system: the key its bulk uploads match plans by. '' when
-- the LA sent none. Kept in every version, as every other field of a plan.
ALTER TABLE plans ADD COLUMN la_reference TEXT NOT NULL DEFAULT '';
ALTER TABLE plan_versions ADD COLUMN la_reference TEXT NOT NULL DEFAULT '';

-- An LA's live plans never share a reference; two LAs may use the same one,
-- and a withdrawn plan gives its reference up. The application checks this
-- before it writes (store.WriteTx.ByReference); the index is the backstop,
-- and the one index the look-up by reference reads.
CREATE UNIQUE INDEX plans_la_reference_idx ON plans (la_code, la_reference)
    WHERE la_reference <> '' AND entered_in_error = 0;
