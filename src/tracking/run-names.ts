import { randomInt } from 'node:crypto';

// MLflow names unnamed runs `<adjective>-<noun>-<n>`; the UI and users are used to the shape.
const ADJECTIVES = (
  'agreeable bold brave bright calm capable clever crisp dapper eager gentle glamorous honest ' +
  'humble intrigued kindly lively luminous merciful nimble orderly patient polite quick resilient ' +
  'rogue salty secretive sedate silent skillful smiling steady stylish sincere tasteful thoughtful ' +
  'trusting unequaled upbeat valuable victorious wise youthful zealous'
).split(' ');
const NOUNS = (
  'ant bass bat bear bee calf carp cat cod colt crab crane deer doe dove duck eel elk finch fish ' +
  'foal fox frog gnat goat hare hawk hen hog horse jay lark lynx mink mole moth mouse owl ox panda ' +
  'pig ram seal shark shrew sloth snail squid stag swan toad trout whale wolf worm wren yak zebra'
).split(' ');

/** A random readable run name, such as `nimble-owl-42`. */
export function randomRunName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${randomInt(1000)}`;
}
