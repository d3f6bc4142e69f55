"""The web console for family members and caregivers, served by family-notify itself."""
